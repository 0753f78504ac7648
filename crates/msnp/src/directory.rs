//! The services Windows Live Messenger 2011 calls at sign-in besides the
//! address book: the directory's core profiles (`profile.asmx` `GetMany`,
//! namespace `http://profile.live.com/`) and WhatsUp's recent activity
//! (`whatsnewservice.asmx` `GetContactsRecentActivity`). Both directions,
//! bounded like the other SOAP documents.

use crate::soap::{Envelope, escape_xml};

/// The directory's namespace.
pub const NS: &str = "http://profile.live.com/";
/// The view Messenger asks for.
pub const CORE_PROFILE: &str = "WLX.DC.CoreProfile";
/// WhatsUp's namespace (the address book's).
pub const WHATSUP_NS: &str = "http://www.msn.com/webservices/AddressBook";
/// The most profiles one `GetMany` may ask for.
pub const MAX_IDS: usize = 500;

/// Attribute names of a core profile (as msnp-sharp names them).
pub const DISPLAY_NAME: &str = "ExpressionProfile.DisplayName";
pub const USER_TILE_URL: &str = "UserTileStaticUrl";

/// `GetMany`: the profiles of these CIDs, in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMany {
    pub ticket: Option<String>,
    pub view: String,
    pub cids: Vec<u64>,
}

impl GetMany {
    /// Reads a request; `None` if it is not a well-formed `GetMany` of the
    /// directory, names more than [`MAX_IDS`] profiles or an id that is not
    /// a CID.
    pub fn parse(xml: &str) -> Option<GetMany> {
        let envelope = Envelope::parse(xml)?;
        let op = envelope.operation()?;
        if op.name != "GetMany" || op.namespace.as_deref() != Some(NS) {
            return None;
        }
        let request = op.child("request")?;
        let view = request.text_at(&["ViewName"]).unwrap_or(CORE_PROFILE).to_string();
        let mut cids = Vec::new();
        for id in
            request.child("Ids").map(|ids| ids.children_named("ProfileId").collect::<Vec<_>>()).unwrap_or_default()
        {
            if cids.len() == MAX_IDS || id.text_at(&["Ns1"]) != Some("Cid") {
                return None;
            }
            cids.push(id.text_at(&["V1"])?.parse().ok()?);
        }
        let ticket = envelope.header.find("TicketToken").map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty());
        Some(GetMany { ticket, view, cids })
    }

    /// The envelope, as a client posts it.
    pub fn to_xml(&self) -> String {
        let ids: String = self
            .cids
            .iter()
            .map(|c| format!("<ProfileId><Ns1>Cid</Ns1><V1>{c}</V1><Ns2>Unspecified</Ns2><V2 /></ProfileId>"))
            .collect();
        crate::soap::envelope(
            &format!(
                r#"<SOAPApplicationHeader xmlns="{NS}"><ApplicationId>AAD9B99B-58E6-4F23-B975-D9EC1F9EC24A</ApplicationId><Scenario>Initial</Scenario></SOAPApplicationHeader><SOAPUserHeader xmlns="{NS}"><TicketToken>{}</TicketToken></SOAPUserHeader>"#,
                escape_xml(self.ticket.as_deref().unwrap_or_default())
            ),
            &format!(
                r#"<GetMany xmlns="{NS}"><request><ViewName>{}</ViewName><Ids>{ids}</Ids></request></GetMany>"#,
                escape_xml(&self.view)
            ),
        )
    }
}

/// One profile of a `GetMany` answer: its CID and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreProfile {
    pub cid: u64,
    pub attributes: Vec<(String, String)>,
}

/// The body of a `GetMany` answer (for `soap::envelope`).
pub fn get_many_response(view: &str, profiles: &[CoreProfile]) -> String {
    let ids: String =
        profiles.iter().map(|p| format!("<ProfileId><Ns1>Cid</Ns1><V1>{}</V1></ProfileId>", p.cid)).collect();
    let views: String = profiles
        .iter()
        .map(|p| {
            let attributes: String = p
                .attributes
                .iter()
                .map(|(n, v)| format!("<A><N>{}</N><V>{}</V></A>", escape_xml(n), escape_xml(v)))
                .collect();
            format!("<View><ViewName>{}</ViewName><Attributes>{attributes}</Attributes></View>", escape_xml(view))
        })
        .collect();
    format!(
        r#"<GetManyResponse xmlns="{NS}"><GetManyResult><Ids>{ids}</Ids><Views>{views}</Views></GetManyResult></GetManyResponse>"#
    )
}

/// Reads a `GetMany` answer (the client's side).
pub fn parse_get_many_response(xml: &str) -> Option<Vec<CoreProfile>> {
    let envelope = Envelope::parse(xml)?;
    let result = envelope.body.find("GetManyResult")?;
    let ids: Vec<u64> = result
        .child("Ids")?
        .children_named("ProfileId")
        .map(|id| id.text_at(&["V1"]).and_then(|v| v.parse().ok()))
        .collect::<Option<_>>()?;
    let views: Vec<_> = result.child("Views")?.children_named("View").collect();
    if views.len() != ids.len() {
        return None;
    }
    Some(
        ids.into_iter()
            .zip(views)
            .map(|(cid, view)| CoreProfile {
                cid,
                attributes: view
                    .child("Attributes")
                    .map(|a| {
                        a.children_named("A")
                            .filter_map(|a| {
                                Some((a.text_at(&["N"])?.to_string(), a.text_at(&["V"]).unwrap_or("").to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
    )
}

/// The ticket of a WhatsUp `GetContactsRecentActivity` request, if the
/// envelope is one (`Some(None)`: one without a ticket).
pub fn recent_activity_request(xml: &str) -> Option<Option<String>> {
    let envelope = Envelope::parse(xml)?;
    let op = envelope.operation()?;
    if op.name != "GetContactsRecentActivity" {
        return None;
    }
    Some(envelope.header.find("TicketToken").map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty()))
}

/// The body of WhatsUp's answer: no activity to show, and the feed's address.
pub fn recent_activity_response(feed_url: &str) -> String {
    format!(
        r#"<GetContactsRecentActivityResponse xmlns="{WHATSUP_NS}"><GetContactsRecentActivityResult><Activities /><Templates /><FeedUrl>{}</FeedUrl></GetContactsRecentActivityResult></GetContactsRecentActivityResponse>"#,
        escape_xml(feed_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_many_reads_back_as_written_both_ways() {
        let request = GetMany { ticket: Some("t=abc&p=".into()), view: CORE_PROFILE.into(), cids: vec![1, 42] };
        assert_eq!(GetMany::parse(&request.to_xml()), Some(request));
        let profiles = vec![
            CoreProfile { cid: 1, attributes: vec![(DISPLAY_NAME.into(), "Alice & co".into())] },
            CoreProfile { cid: 42, attributes: vec![] },
        ];
        let answer = crate::soap::envelope("", &get_many_response(CORE_PROFILE, &profiles));
        assert_eq!(parse_get_many_response(&answer), Some(profiles));
    }

    #[test]
    fn hostile_requests_are_refused() {
        let many = GetMany { ticket: None, view: CORE_PROFILE.into(), cids: (0..=MAX_IDS as u64).collect() };
        assert_eq!(GetMany::parse(&many.to_xml()), None);
        let not_a_cid = GetMany { ticket: None, view: CORE_PROFILE.into(), cids: vec![1] }
            .to_xml()
            .replace("<V1>1</V1>", "<V1>x</V1>");
        assert_eq!(GetMany::parse(&not_a_cid), None);
        assert_eq!(GetMany::parse("<x/>"), None);
    }

    #[test]
    fn whatsup_answers_empty() {
        let request = crate::soap::envelope(
            r#"<ABAuthHeader xmlns="http://www.msn.com/webservices/AddressBook"><TicketToken>t=1</TicketToken></ABAuthHeader>"#,
            r#"<GetContactsRecentActivity xmlns="http://www.msn.com/webservices/AddressBook"><entityHandle><Cid>0</Cid></entityHandle><locales><string>en-US</string></locales><count>50</count></GetContactsRecentActivity>"#,
        );
        assert_eq!(recent_activity_request(&request), Some(Some("t=1".into())));
        let answer = crate::soap::envelope("", &recent_activity_response("http://x/feed"));
        assert!(crate::soap::Envelope::parse(&answer).is_some());
    }
}
