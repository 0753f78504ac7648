//! The storage service of MSNP13+ clients (`SchematizedStore.asmx`): the
//! roaming profile. A thin front: the display name is the friendly name
//! every dialect shows (`REA`/`PRP MFN`), the personal status is the `PSM`
//! of the personal message (`UUX`), and the display picture is kept in the
//! store for the user's other sign-ins and served at `/storage/usertile/`.

use std::sync::Arc;

use backend::presence::OnlineUser;
use backend::store::StoredPhoto;
use msnp::personal;
use msnp::storage::{
    self, Operation, Photo, Profile, Request, Unreadable, create_document_response, empty_response,
    find_documents_response, get_profile_response,
};

use crate::shared::Shared;

/// Where display pictures are served, under the host the client used.
pub const TILE_PATH: &str = "/storage/usertile/";

/// The picture types served back: images only, so that a stored document
/// can never be served as a page of this origin.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/bmp"];

/// The HTTP status and envelope of an answer.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn fault(code: &str, text: &str) -> Answer {
    Answer { status: 500, body: storage::fault(code, text) }
}

fn ok(body: String) -> Answer {
    Answer { status: 200, body: msnp::soap::envelope("", &body) }
}

/// Handles one request; `cookie` is the `MSPAuth` cookie's token (MSNP13/14
/// clients send it instead of a ticket in the envelope); `base` is the
/// scheme and host the client reached (picture addresses are built on it).
pub async fn serve(shared: &Arc<Shared>, body: &[u8], cookie: Option<&str>, base: &str) -> Answer {
    let request = match std::str::from_utf8(body).map_err(|_| None).and_then(Request::parse) {
        Ok(r) => r,
        Err(None) => return fault("BadArgument", "Malformed request"),
        Err(Some(Unreadable::Unknown(name))) => return fault("NotImplemented", &format!("{name} is not offered")),
        Err(Some(Unreadable::BadArgument(what))) => return fault("BadArgument", &format!("Bad or missing {what}")),
    };
    let Some(ticket) = request.ticket.as_deref().or(cookie) else {
        return fault("BadContextToken", "No ticket");
    };
    let Some(user) = shared.backend.web_user(ticket).await else {
        return fault("BadContextToken", "Invalid or expired ticket");
    };
    let ns = request.namespace.as_str();
    let me = Me { shared, user: &user, base };
    match request.operation {
        Operation::GetProfile { cid } => match me.check(&cid) {
            Ok(()) => me.profile(ns).await,
            Err(a) => a,
        },
        Operation::UpdateProfile { resource_id, display_name, personal_status } => {
            me.update(ns, &resource_id, display_name, personal_status).await
        }
        Operation::CreateDocument { cid, name, mime, data } => match me.check(&cid) {
            Ok(()) => me.create_photo(ns, name, mime, data).await,
            Err(a) => a,
        },
        Operation::FindDocuments { cid } => match me.check(&cid) {
            Ok(()) => match me.photo().await {
                Ok(photo) => ok(find_documents_response(ns, photo.as_ref())),
                Err(a) => a,
            },
            Err(a) => a,
        },
        // The picture is the profile's as soon as it is created.
        Operation::CreateRelationships => ok(empty_response(ns, "CreateRelationships")),
        Operation::DeleteRelationships { resource_ids } => me.delete_photo(ns, &resource_ids).await,
    }
}

/// The caller and where they reached us.
struct Me<'a> {
    shared: &'a Arc<Shared>,
    user: &'a Arc<OnlineUser>,
    base: &'a str,
}

impl Me<'_> {
    fn cid(&self) -> u64 {
        self.user.account_id as u64
    }

    /// Only one's own profile: the alias is the CID the address book gave
    /// (decimal, as clients copy it; hexadecimal as in the resource ids).
    fn check(&self, cid: &str) -> Result<(), Answer> {
        let own = cid.parse::<u64>().ok() == Some(self.cid()) || u64::from_str_radix(cid, 16).ok() == Some(self.cid());
        if own { Ok(()) } else { Err(fault("AccessDenied", "Not your profile")) }
    }

    async fn photo(&self) -> Result<Option<Photo>, Answer> {
        let stored = self
            .shared
            .backend
            .profile_photo(self.user.account_id)
            .await
            .map_err(|_| fault("InternalError", "Try again later"))?;
        Ok(stored.map(|p| Photo {
            url: format!("{}{TILE_PATH}{}", self.base, p.resource_id),
            resource_id: p.resource_id,
            name: p.name,
            mime: p.mime,
            size: p.data.len(),
        }))
    }

    async fn profile(&self, ns: &str) -> Answer {
        let photo = match self.photo().await {
            Ok(p) => p,
            Err(a) => return a,
        };
        let presence = self.user.presence();
        let (resource_id, expression_id) = Profile::ids(self.cid());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let profile = Profile {
            resource_id,
            expression_id,
            display_name: presence.friendly,
            personal_status: presence.personal_message.as_deref().map(personal::status_of).unwrap_or_default(),
            photo,
            changed: msnp::time::msnp_timestamp(now.as_millis() as i64),
        };
        ok(get_profile_response(ns, &profile))
    }

    /// `UpdateProfile`: each property only if it changed, so that a client
    /// that also says it on the notification connection (`PRP`, `UUX`)
    /// does not make watchers see it twice.
    async fn update(&self, ns: &str, resource_id: &str, name: Option<String>, status: Option<String>) -> Answer {
        // Clients name the expression profile's id (aMSN, bitlbee) or the
        // profile's.
        let (profile, expression) = Profile::ids(self.cid());
        if resource_id != profile && resource_id != expression {
            return fault("AccessDenied", "Not your profile");
        }
        let backend = &self.shared.backend;
        let presence = self.user.presence();
        if let Some(name) = name.filter(|n| *n != presence.friendly && !n.is_empty()) {
            if msnp::request::decode_friendly(&msnp::urlencode::encode(&name)).is_err() {
                return fault("BadArgument", "Not a name Messenger can show");
            }
            if backend.rename(self.user, &self.user.handle, &name).await.is_err() {
                return fault("InternalError", "Try again later");
            }
        }
        let current = presence.personal_message.as_deref();
        if let Some(status) = status.filter(|s| *s != current.map(personal::status_of).unwrap_or_default()) {
            if status.chars().count() > 128 {
                return fault("BadArgument", "The personal message is too long");
            }
            let document = personal::with_status(current, &status);
            if backend.set_personal_message(self.user, &document).await.is_err() {
                return fault("InternalError", "Try again later");
            }
        }
        ok(empty_response(ns, "UpdateProfile"))
    }

    async fn create_photo(&self, ns: &str, name: String, mime: String, data: Vec<u8>) -> Answer {
        let mime = mime.to_ascii_lowercase();
        if !IMAGE_TYPES.contains(&mime.as_str()) {
            return fault("BadArgument", "Only pictures are kept");
        }
        let resource_id = photo_resource_id(self.cid());
        let stored = StoredPhoto { resource_id: resource_id.clone(), name, mime, data };
        match self.shared.backend.set_profile_photo(self.user, Some(stored)).await {
            Ok(()) => ok(create_document_response(ns, &resource_id)),
            Err(_) => fault("InternalError", "Try again later"),
        }
    }

    async fn delete_photo(&self, ns: &str, resource_ids: &[String]) -> Answer {
        let current = match self.photo().await {
            Ok(p) => p,
            Err(a) => return a,
        };
        match current {
            Some(p) if resource_ids.contains(&p.resource_id) => {
                if self.shared.backend.set_profile_photo(self.user, None).await.is_err() {
                    return fault("InternalError", "Try again later");
                }
                ok(empty_response(ns, "DeleteRelationships"))
            }
            _ => fault("ItemDoesNotExist", "No such document"),
        }
    }
}

/// A display picture by its resource id (`GET /storage/usertile/<id>`):
/// its type and bytes, if it is the current picture of the account the id
/// names.
/// A new display picture's resource id (its address under [`TILE_PATH`]):
/// random, so that it cannot be guessed from the account; the CID in front
/// finds its owner.
pub fn photo_resource_id(cid: u64) -> String {
    format!("{cid:X}!2{:08}", backend::secrets::random_u32() % 100_000_000)
}

pub async fn tile(shared: &Shared, resource_id: &str) -> Option<(String, Vec<u8>)> {
    let (cid, _) = resource_id.split_once('!')?;
    let account = i64::from_str_radix(cid, 16).ok()?;
    let photo = shared.backend.profile_photo(account).await.ok()??;
    (photo.resource_id == resource_id).then_some((photo.mime, photo.data))
}
