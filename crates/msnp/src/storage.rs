//! The storage service of MSNP13+ (`SchematizedStore.asmx`): the roaming
//! profile (display name, personal message, display picture) that Windows
//! Live Messenger reads at sign-in and writes when they change, both ways:
//! requests a client encodes and a server reads, answers a server encodes
//! and a client reads back.
//!
//! Clients of different years name different namespaces (`storage/w10`
//! from WLM 8.x and bitlbee, `storage/2008` from WLM 2009); an answer is
//! written in the namespace its request used.

use crate::soap::{Element, Envelope, escape_xml};

/// Every storage namespace starts so.
pub const NS_PREFIX: &str = "http://www.msn.com/webservices/storage/";
/// The namespace bitlbee and WLM 8.x use.
pub const NS_W10: &str = "http://www.msn.com/webservices/storage/w10";

/// The largest display picture kept (decoded): a 96x96 user tile is a few
/// kilobytes; the HTTP body limit bounds the request anyway.
pub const MAX_PHOTO: usize = 48 * 1024;

/// A display picture as the profile holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub resource_id: String,
    pub name: String,
    pub mime: String,
    pub size: usize,
    /// Where the picture can be fetched (`PreAuthURL`).
    pub url: String,
}

/// The profile `GetProfile` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's id: `<cid>!106`.
    pub resource_id: String,
    /// The expression profile's id: `<cid>!118`.
    pub expression_id: String,
    pub display_name: String,
    pub personal_status: String,
    pub photo: Option<Photo>,
    /// When the profile last changed (an MSNP timestamp).
    pub changed: String,
}

impl Profile {
    /// The ids the service gave a user's profile, from their CID.
    pub fn ids(cid: u64) -> (String, String) {
        (format!("{:X}!106", cid), format!("{:X}!118", cid))
    }
}

/// One operation of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `GetProfile` of the profile named by CID (`Alias/Name`).
    GetProfile { cid: String },
    /// `UpdateProfile`: the properties named are `Some`.
    UpdateProfile { resource_id: String, display_name: Option<String>, personal_status: Option<String> },
    /// `CreateDocument`: a display picture, decoded.
    CreateDocument { cid: String, name: String, mime: String, data: Vec<u8> },
    /// `FindDocuments` under the user's `/UserTiles`.
    FindDocuments { cid: String },
    /// `CreateRelationships`: links a document to the profile.
    CreateRelationships,
    /// `DeleteRelationships`: unlinks (and here deletes) documents.
    DeleteRelationships { resource_ids: Vec<String> },
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    Unknown(String),
    BadArgument(&'static str),
}

/// A request: its ticket (none when it comes in the `MSPAuth` cookie, as
/// from MSNP13/14 clients), the namespace it spoke, and the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub ticket: Option<String>,
    pub namespace: String,
    pub operation: Operation,
}

fn text(e: &Element, path: &[&str]) -> Option<String> {
    e.text_at(path).filter(|t| !t.is_empty()).map(str::to_string)
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::GetProfile { .. } => "GetProfile",
            Operation::UpdateProfile { .. } => "UpdateProfile",
            Operation::CreateDocument { .. } => "CreateDocument",
            Operation::FindDocuments { .. } => "FindDocuments",
            Operation::CreateRelationships => "CreateRelationships",
            Operation::DeleteRelationships { .. } => "DeleteRelationships",
        }
    }

    fn parse(op: &Element) -> Result<Operation, Unreadable> {
        let alias = |handle: &str| text(op, &[handle, "Alias", "Name"]).ok_or(Unreadable::BadArgument("Alias"));
        Ok(match op.name.as_str() {
            "GetProfile" => Operation::GetProfile { cid: alias("profileHandle")? },
            "UpdateProfile" => {
                let profile = op.child("profile").ok_or(Unreadable::BadArgument("profile"))?;
                let expression = profile.child("ExpressionProfile");
                Operation::UpdateProfile {
                    resource_id: text(profile, &["ResourceID"]).ok_or(Unreadable::BadArgument("ResourceID"))?,
                    // Present means set (an empty element clears).
                    display_name: expression.and_then(|e| e.child("DisplayName")).map(|d| d.text.trim().to_string()),
                    personal_status: expression
                        .and_then(|e| e.child("PersonalStatus"))
                        .map(|d| d.text.trim().to_string()),
                }
            }
            "CreateDocument" => {
                let document = op.child("document").ok_or(Unreadable::BadArgument("document"))?;
                let stream = document.path(&["DocumentStreams", "DocumentStream"]);
                let data = stream
                    .and_then(|s| text(s, &["Data"]))
                    .and_then(|d| crate::base64::decode(&d.chars().filter(|c| !c.is_whitespace()).collect::<String>()))
                    .ok_or(Unreadable::BadArgument("Data"))?;
                if data.is_empty() || data.len() > MAX_PHOTO {
                    return Err(Unreadable::BadArgument("Data size"));
                }
                Operation::CreateDocument {
                    cid: alias("parentHandle")?,
                    name: text(document, &["Name"]).unwrap_or_default(),
                    mime: stream.and_then(|s| text(s, &["MimeType"])).unwrap_or_else(|| "image/png".into()),
                    data,
                }
            }
            "FindDocuments" => Operation::FindDocuments { cid: alias("objectHandle")? },
            "CreateRelationships" => Operation::CreateRelationships,
            "DeleteRelationships" => {
                let ids: Vec<String> = op
                    .child("targetHandles")
                    .map(|t| t.children_named("ObjectHandle").filter_map(|h| text(h, &["ResourceID"])).collect())
                    .unwrap_or_default();
                if ids.is_empty() || ids.len() > 16 {
                    return Err(Unreadable::BadArgument("targetHandles"));
                }
                Operation::DeleteRelationships { resource_ids: ids }
            }
            other => return Err(Unreadable::Unknown(other.to_string())),
        })
    }

    /// The operation element, as a client sends it.
    pub fn to_xml(&self, ns: &str) -> String {
        let alias =
            |cid: &str| format!("<Alias><Name>{}</Name><NameSpace>MyCidStuff</NameSpace></Alias>", escape_xml(cid));
        let inner = match self {
            Operation::GetProfile { cid } => format!(
                concat!(
                    "<profileHandle>{}<RelationshipName>MyProfile</RelationshipName></profileHandle>",
                    "<profileAttributes><ResourceID>true</ResourceID><DateModified>true</DateModified>",
                    "<ExpressionProfileAttributes><ResourceID>true</ResourceID><DateModified>true</DateModified>",
                    "<DisplayName>true</DisplayName><DisplayNameLastModified>true</DisplayNameLastModified>",
                    "<PersonalStatus>true</PersonalStatus><PersonalStatusLastModified>true</PersonalStatusLastModified>",
                    "<StaticUserTilePublicURL>true</StaticUserTilePublicURL><Photo>true</Photo><Flags>true</Flags>",
                    "</ExpressionProfileAttributes></profileAttributes>"
                ),
                alias(cid)
            ),
            Operation::UpdateProfile { resource_id, display_name, personal_status } => {
                let name =
                    display_name.as_ref().map(|n| format!("<DisplayName>{}</DisplayName>", escape_xml(n))).unwrap_or_default();
                let status = personal_status
                    .as_ref()
                    .map(|s| format!("<PersonalStatus>{}</PersonalStatus>", escape_xml(s)))
                    .unwrap_or_default();
                format!(
                    "<profile><ResourceID>{}</ResourceID><ExpressionProfile><FreeText>Update</FreeText>{name}{status}<Flags>0</Flags></ExpressionProfile></profile>",
                    escape_xml(resource_id)
                )
            }
            Operation::CreateDocument { cid, name, mime, data } => format!(
                concat!(
                    "<parentHandle><RelationshipName>/UserTiles</RelationshipName>{alias}</parentHandle>",
                    r#"<document xsi:type="Photo" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Name>{name}</Name><DocumentStreams>"#,
                    r#"<DocumentStream xsi:type="PhotoStream"><DocumentStreamType>UserTileStatic</DocumentStreamType>"#,
                    "<MimeType>{mime}</MimeType><Data>{data}</Data><DataSize>0</DataSize></DocumentStream></DocumentStreams></document>",
                    "<relationshipName>Messenger User Tile</relationshipName>"
                ),
                alias = alias(cid),
                name = escape_xml(name),
                mime = escape_xml(mime),
                data = crate::base64::encode(data)
            ),
            Operation::FindDocuments { cid } => format!(
                concat!(
                    "<objectHandle><RelationshipName>/UserTiles</RelationshipName>{}</objectHandle>",
                    "<documentAttributes><ResourceID>true</ResourceID><Name>true</Name></documentAttributes>",
                    "<documentFilter><FilterAttributes>None</FilterAttributes></documentFilter>",
                    "<documentSort><SortBy>DateModified</SortBy></documentSort>",
                    "<findContext><FindMethod>Default</FindMethod><ChunkSize>25</ChunkSize></findContext>"
                ),
                alias(cid)
            ),
            Operation::CreateRelationships => "<relationships><Relationship><RelationshipName>ProfilePhoto</RelationshipName></Relationship></relationships>".into(),
            Operation::DeleteRelationships { resource_ids } => {
                let handles: String = resource_ids
                    .iter()
                    .map(|r| format!("<ObjectHandle><ResourceID>{}</ResourceID></ObjectHandle>", escape_xml(r)))
                    .collect();
                format!("<sourceHandle><RelationshipName>/UserTiles</RelationshipName></sourceHandle><targetHandles>{handles}</targetHandles>")
            }
        };
        format!(r#"<{name} xmlns="{ns}">{inner}</{name}>"#, name = self.name())
    }
}

impl Request {
    /// Reads a request; `Err` with `None` when it is not a storage request
    /// at all (no envelope, another namespace).
    pub fn parse(xml: &str) -> Result<Request, Option<Unreadable>> {
        let envelope = Envelope::parse(xml).ok_or(None)?;
        let op = envelope.operation().ok_or(None)?;
        let namespace = op.namespace.clone().filter(|n| n.starts_with(NS_PREFIX)).ok_or(None)?;
        let ticket = envelope.header.find("TicketToken").map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty());
        let operation = Operation::parse(op).map_err(Some)?;
        Ok(Request { ticket, namespace, operation })
    }

    /// The envelope, as a client posts it.
    pub fn to_xml(&self) -> String {
        crate::soap::envelope(
            &format!(
                concat!(
                    r#"<StorageApplicationHeader xmlns="{ns}"><ApplicationID>Messenger Client 8.5</ApplicationID><Scenario>Initial</Scenario></StorageApplicationHeader>"#,
                    r#"<StorageUserHeader xmlns="{ns}"><Puid>0</Puid><TicketToken>{ticket}</TicketToken></StorageUserHeader>"#
                ),
                ns = self.namespace,
                ticket = escape_xml(self.ticket.as_deref().unwrap_or_default())
            ),
            &self.operation.to_xml(&self.namespace),
        )
    }

    /// The SOAP action a client names.
    pub fn action(&self) -> String {
        format!("{}/{}", self.namespace, self.operation.name())
    }
}

fn photo_xml(p: &Photo, changed: &str) -> String {
    format!(
        concat!(
            "<Photo><ItemType>Photo</ItemType><ResourceID>{rid}</ResourceID><DateModified>{changed}</DateModified>",
            "<Name>{name}</Name><DocumentStreams><DocumentStream><DocumentStreamName>UserTileStatic</DocumentStreamName>",
            "<MimeType>{mime}</MimeType><DataSize>{size}</DataSize><PreAuthURL>{url}</PreAuthURL>",
            "<PreAuthURLPartner>{url}</PreAuthURLPartner><DocumentStreamType>UserTileStatic</DocumentStreamType>",
            "<WriteMode>Overwrite</WriteMode><StreamVersion>1</StreamVersion><SHA1Hash /><Genie>false</Genie>",
            "<StreamDataStatus>None</StreamDataStatus><StreamStatus>None</StreamStatus><IsAliasForDefault>false</IsAliasForDefault>",
            "<ExpirationDateTime>0001-01-01T00:00:00</ExpirationDateTime></DocumentStream></DocumentStreams></Photo>"
        ),
        rid = escape_xml(&p.resource_id),
        changed = escape_xml(changed),
        name = escape_xml(&p.name),
        mime = escape_xml(&p.mime),
        size = p.size,
        url = escape_xml(&p.url),
    )
}

/// The `GetProfile` answer's body.
pub fn get_profile_response(ns: &str, p: &Profile) -> String {
    format!(
        concat!(
            r#"<GetProfileResponse xmlns="{ns}"><GetProfileResult><ResourceID>{rid}</ResourceID><DateModified>{changed}</DateModified>"#,
            "<ExpressionProfile><ResourceID>{eid}</ResourceID><DateModified>{changed}</DateModified><Version>1</Version><Flags>0</Flags>",
            "{photo}<PersonalStatus>{status}</PersonalStatus><PersonalStatusLastModified>{changed}</PersonalStatusLastModified>",
            "<DisplayName>{name}</DisplayName><DisplayNameLastModified>{changed}</DisplayNameLastModified>",
            "<StaticUserTilePublicURL>{tile}</StaticUserTilePublicURL></ExpressionProfile></GetProfileResult></GetProfileResponse>"
        ),
        ns = ns,
        rid = escape_xml(&p.resource_id),
        eid = escape_xml(&p.expression_id),
        changed = escape_xml(&p.changed),
        photo = p.photo.as_ref().map(|ph| photo_xml(ph, &p.changed)).unwrap_or_default(),
        status = escape_xml(&p.personal_status),
        name = escape_xml(&p.display_name),
        tile = p.photo.as_ref().map(|ph| escape_xml(&ph.url)).unwrap_or_default(),
    )
}

/// Reads a `GetProfile` answer back.
pub fn parse_get_profile_response(xml: &str) -> Option<Profile> {
    let envelope = Envelope::parse(xml)?;
    let result = envelope.body.find("GetProfileResult")?;
    let expression = result.child("ExpressionProfile")?;
    let photo = expression.child("Photo").map(|ph| {
        let stream = ph.path(&["DocumentStreams", "DocumentStream"]);
        let field = |name: &str| stream.and_then(|s| s.text_at(&[name])).unwrap_or_default().to_string();
        Photo {
            resource_id: ph.text_at(&["ResourceID"]).unwrap_or_default().to_string(),
            name: ph.text_at(&["Name"]).unwrap_or_default().to_string(),
            mime: field("MimeType"),
            size: field("DataSize").parse().unwrap_or(0),
            url: field("PreAuthURL"),
        }
    });
    Some(Profile {
        resource_id: result.text_at(&["ResourceID"])?.to_string(),
        expression_id: expression.text_at(&["ResourceID"]).unwrap_or_default().to_string(),
        display_name: expression.text_at(&["DisplayName"]).unwrap_or_default().to_string(),
        personal_status: expression.text_at(&["PersonalStatus"]).unwrap_or_default().to_string(),
        photo,
        changed: result.text_at(&["DateModified"]).unwrap_or_default().to_string(),
    })
}

/// The `CreateDocument` answer's body: the new document's id.
pub fn create_document_response(ns: &str, resource_id: &str) -> String {
    format!(
        r#"<CreateDocumentResponse xmlns="{ns}"><CreateDocumentResult>{}</CreateDocumentResult></CreateDocumentResponse>"#,
        escape_xml(resource_id)
    )
}

/// The `FindDocuments` answer's body: the user's display picture, if any.
pub fn find_documents_response(ns: &str, photo: Option<&Photo>) -> String {
    let docs = photo
        .map(|p| {
            format!(
                concat!(
                    "<Document><ResourceID>{}</ResourceID><Name>{}</Name><DocumentStreams><DocumentStream>",
                    "<DocumentStreamType>UserTileStatic</DocumentStreamType><MimeType>{}</MimeType><DataSize>{}</DataSize>",
                    "<PreAuthURL>{}</PreAuthURL></DocumentStream></DocumentStreams></Document>"
                ),
                escape_xml(&p.resource_id),
                escape_xml(&p.name),
                escape_xml(&p.mime),
                p.size,
                escape_xml(&p.url)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<FindDocumentsResponse xmlns="{ns}"><FindDocumentsResult>{docs}</FindDocumentsResult></FindDocumentsResponse>"#
    )
}

/// An answer that returns nothing: `<NameResponse/>`.
pub fn empty_response(ns: &str, operation: &str) -> String {
    format!(r#"<{operation}Response xmlns="{ns}" />"#)
}

/// A fault of the service: `code` as the `errorcode` clients log.
pub fn fault(code: &str, text: &str) -> String {
    crate::soap::fault("soap:Client", text, &format!(r#"<errorcode xmlns="{NS_W10}">{}</errorcode>"#, escape_xml(code)))
}

/// Reads a fault back: its error code.
pub fn parse_fault(xml: &str) -> Option<String> {
    Some(Envelope::parse(xml)?.body.find("Fault")?.text_at(&["detail", "errorcode"])?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_reads_back() {
        for (ns, operation) in [
            (NS_W10, Operation::GetProfile { cid: "1A2B".into() }),
            (
                "http://www.msn.com/webservices/storage/2008",
                Operation::UpdateProfile {
                    resource_id: "1A2B!106".into(),
                    display_name: Some("Al & Co".into()),
                    personal_status: Some(String::new()),
                },
            ),
            (
                NS_W10,
                Operation::UpdateProfile {
                    resource_id: "r".into(),
                    display_name: None,
                    personal_status: Some("busy".into()),
                },
            ),
            (
                NS_W10,
                Operation::CreateDocument {
                    cid: "1".into(),
                    name: "tile".into(),
                    mime: "image/png".into(),
                    data: vec![1, 2, 3],
                },
            ),
            (NS_W10, Operation::FindDocuments { cid: "1".into() }),
            (NS_W10, Operation::CreateRelationships),
            (NS_W10, Operation::DeleteRelationships { resource_ids: vec!["1!205".into()] }),
        ] {
            let request = Request { ticket: Some("t=a&p=b".into()), namespace: ns.into(), operation };
            assert_eq!(Request::parse(&request.to_xml()), Ok(request.clone()));
            assert!(request.action().ends_with(request.operation.name()));
        }
        let other = Request { ticket: None, namespace: "urn:x".into(), operation: Operation::CreateRelationships };
        assert_eq!(Request::parse(&other.to_xml()), Err(None));
        let big = Operation::CreateDocument {
            cid: "1".into(),
            name: "n".into(),
            mime: "m".into(),
            data: vec![0; MAX_PHOTO + 1],
        };
        let big = Request { ticket: Some("t".into()), namespace: NS_W10.into(), operation: big };
        assert_eq!(Request::parse(&big.to_xml()), Err(Some(Unreadable::BadArgument("Data size"))));
    }

    #[test]
    fn profiles_read_back() {
        let wrap = |body: String| crate::soap::envelope("", &body);
        let (rid, eid) = Profile::ids(0x1f);
        assert_eq!((rid.as_str(), eid.as_str()), ("1F!106", "1F!118"));
        let mut p = Profile {
            resource_id: rid,
            expression_id: eid,
            display_name: "Alice <3".into(),
            personal_status: "at work & busy".into(),
            photo: None,
            changed: "2026-12-05T10:00:00.0000000+00:00".into(),
        };
        assert_eq!(parse_get_profile_response(&wrap(get_profile_response(NS_W10, &p))), Some(p.clone()));
        p.photo = Some(Photo {
            resource_id: "1F!205".into(),
            name: "tile".into(),
            mime: "image/png".into(),
            size: 1234,
            url: "http://localhost/storage/usertile/1F!205".into(),
        });
        assert_eq!(parse_get_profile_response(&wrap(get_profile_response(NS_W10, &p))), Some(p));
        assert_eq!(parse_fault(&fault("AccessDenied", "not <yours>")).as_deref(), Some("AccessDenied"));
    }
}
