//! The directory (`profile.asmx` `GetMany`) and WhatsUp
//! (`GetContactsRecentActivity`) services Windows Live Messenger 2011 calls
//! at sign-in. A thin front: a profile's display name is the name the
//! caller's own list keeps for that contact (its own for itself), and its
//! picture only the caller's own; WhatsUp has no activity to show.

use std::sync::Arc;

use msnp::directory::{CORE_PROFILE, CoreProfile, DISPLAY_NAME, GetMany, USER_TILE_URL};

use crate::shared::Shared;
use crate::storage::{Answer, TILE_PATH};

fn fault(code: &str, text: &str) -> Answer {
    Answer { status: 500, body: msnp::soap::fault(&format!("soap:{code}"), text, "") }
}

fn ok(body: String) -> Answer {
    Answer { status: 200, body: msnp::soap::envelope("", &body) }
}

/// `GetMany`: the core profiles of the CIDs asked for that the caller may
/// see (itself and the contacts on its lists); the rest are left out.
pub async fn get_many(shared: &Arc<Shared>, body: &[u8], base: &str) -> Answer {
    let Some(request) = std::str::from_utf8(body).ok().and_then(GetMany::parse) else {
        return fault("Client", "Malformed request");
    };
    if request.view != CORE_PROFILE {
        return fault("Client", "Unknown view");
    }
    let Some(user) = shared.backend.web_user(request.ticket.as_deref().unwrap_or_default()).await else {
        return fault("Client", "Invalid or expired ticket");
    };
    let Ok(lists) = shared.backend.list_snapshot(&user).await else {
        return fault("Server", "Try again later");
    };
    let own = user.account_id as u64;
    let mut profiles = Vec::new();
    for cid in request.cids {
        if cid == own {
            let mut attributes = vec![(DISPLAY_NAME.to_string(), user.presence().friendly)];
            if let Ok(Some(photo)) = shared.backend.profile_photo(user.account_id).await {
                attributes.push((USER_TILE_URL.to_string(), format!("{base}{TILE_PATH}{}", photo.resource_id)));
            }
            profiles.push(CoreProfile { cid, attributes });
        } else if let Some(entry) = lists.entries.iter().find(|e| e.contact_id as u64 == cid) {
            profiles.push(CoreProfile { cid, attributes: vec![(DISPLAY_NAME.to_string(), entry.friendly.clone())] });
        }
    }
    ok(msnp::directory::get_many_response(CORE_PROFILE, &profiles))
}

/// WhatsUp's `GetContactsRecentActivity`: nothing to show, for a caller
/// with a current ticket.
pub async fn recent_activity(shared: &Arc<Shared>, body: &[u8], base: &str) -> Answer {
    let Some(ticket) = std::str::from_utf8(body).ok().and_then(msnp::directory::recent_activity_request) else {
        return fault("Client", "Malformed request");
    };
    if shared.backend.web_user(ticket.as_deref().unwrap_or_default()).await.is_none() {
        return fault("Client", "Invalid or expired ticket");
    }
    ok(msnp::directory::recent_activity_response(&format!("{base}/whatsnew/feed")))
}
