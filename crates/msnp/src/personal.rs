//! The personal-message document (`UUX`'s payload, `UBX` to watchers):
//! `<Data><PSM>...</PSM><CurrentMedia>...</CurrentMedia>...</Data>`. The
//! storage service's `PersonalStatus` is its `PSM`.

use crate::endpoint::{Capabilities, MachineGuid};
use crate::soap::{Element, escape_xml};
use crate::types::OnlineState;

/// The elements of a personal-message document kept between sign-ins and
/// shown to watchers; endpoint data is the server's to add.
const PERSONAL_ELEMENTS: [&str; 7] =
    ["PSM", "CurrentMedia", "MachineGuid", "DDP", "SignatureSound", "Scene", "ColorScheme"];

/// The personal elements of a `<Data>` document, written back.
fn personal_elements(data: &Element) -> String {
    flat_elements(data.children.iter().filter(|c| PERSONAL_ELEMENTS.contains(&c.name.as_str())))
}

/// Text-only elements written back as `<Name>text</Name>`.
fn flat_elements<'a>(elements: impl Iterator<Item = &'a Element>) -> String {
    elements.map(|c| format!("<{n}>{t}</{n}>", n = c.name, t = escape_xml(&c.text))).collect()
}

/// One endpoint (point of presence, MSNP16+) of an account as `UBX` shows
/// it: its capabilities to everyone (`EndpointData`), the rest only to the
/// account's own endpoints (`PrivateEndpointData`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EndpointData {
    pub machine: Option<MachineGuid>,
    pub capabilities: Capabilities,
    /// The name the user gave the machine (`EpName`).
    pub name: Option<String>,
    pub idle: Option<bool>,
    pub client_type: Option<u32>,
    pub state: Option<OnlineState>,
}

/// What a `UUX` document says: the personal message (when it has one of
/// the personal elements) and what the endpoint says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UuxDocument {
    /// Whether it carries endpoint data (`EndpointData`,
    /// `PrivateEndpointData`, MSNP16+).
    pub describes_endpoint: bool,
    /// The personal-message document to keep and show, without endpoint data.
    pub personal: Option<String>,
    /// `EndpointData/Capabilities`.
    pub capabilities: Option<Capabilities>,
    pub name: Option<String>,
    pub idle: Option<bool>,
    pub client_type: Option<u32>,
    pub state: Option<OnlineState>,
}

/// Longest endpoint name kept (`EpName`).
pub const MAX_ENDPOINT_NAME: usize = 64;

impl UuxDocument {
    /// Reads a `UUX` payload: `<Data>` with personal elements and perhaps
    /// endpoint data, or a bare `<EndpointData>`/`<PrivateEndpointData>`
    /// (papyon and WLM 2009 send those as documents of their own). `None`
    /// when it is not XML or has another root.
    pub fn parse(payload: &str) -> Option<UuxDocument> {
        let root = Element::parse(payload)?;
        let mut doc = UuxDocument::default();
        let (endpoint, private) = match root.name.as_str() {
            "Data" => (root.child("EndpointData"), root.child("PrivateEndpointData")),
            "EndpointData" => (Some(&root), None),
            "PrivateEndpointData" => (None, Some(&root)),
            _ => return None,
        };
        doc.describes_endpoint = endpoint.is_some() || private.is_some();
        if root.name == "Data" && root.children.iter().any(|c| PERSONAL_ELEMENTS.contains(&c.name.as_str())) {
            doc.personal = Some(format!("<Data>{}</Data>", personal_elements(&root)));
        }
        if let Some(e) = endpoint {
            doc.capabilities = e.text_at(&["Capabilities"]).and_then(Capabilities::parse);
        }
        if let Some(p) = private {
            doc.name =
                p.text_at(&["EpName"]).map(|n| n.chars().filter(|c| !c.is_control()).take(MAX_ENDPOINT_NAME).collect());
            doc.idle = p.text_at(&["Idle"]).map(|t| t.eq_ignore_ascii_case("true"));
            doc.client_type = p.text_at(&["ClientType"]).and_then(|t| t.parse().ok());
            doc.state = p.text_at(&["State"]).and_then(OnlineState::from_code);
        }
        Some(doc)
    }
}

/// The `UBX` payload a client of `dialect` is sent for a contact: the
/// personal message as kept (MSNP11-15), or, where endpoints are shown
/// (MSNP16+), the document with them and, for the account's own (`own`),
/// their private data. `None` when there is nothing the dialect shows.
pub fn ubx_document(
    dialect: crate::Dialect,
    personal: Option<&str>,
    endpoints: &[EndpointData],
    own: bool,
) -> Option<String> {
    if dialect.has_points_of_presence() {
        (personal.is_some() || !endpoints.is_empty()).then(|| with_endpoints(personal, endpoints, own))
    } else if dialect.has_personal_message() {
        personal.map(str::to_string)
    } else {
        None
    }
}

/// The `UBX` document for a contact in a dialect with points of presence:
/// their personal message, then `EndpointData` for each endpoint, and for
/// the account's own endpoints (`private`) their `PrivateEndpointData`.
pub fn with_endpoints(document: Option<&str>, endpoints: &[EndpointData], private: bool) -> String {
    let personal = document.and_then(Element::parse).filter(|d| d.name == "Data");
    let mut out = String::from("<Data>");
    match personal {
        Some(d) => out.push_str(&personal_elements(&d)),
        None => out.push_str("<PSM></PSM><CurrentMedia></CurrentMedia>"),
    }
    for e in endpoints {
        let Some(id) = &e.machine else { continue };
        out.push_str(&format!(
            "<EndpointData id=\"{id}\"><Capabilities>{}</Capabilities></EndpointData>",
            e.capabilities.with_extended()
        ));
    }
    if private {
        for e in endpoints {
            let Some(id) = &e.machine else { continue };
            out.push_str(&format!("<PrivateEndpointData id=\"{id}\">"));
            if let Some(name) = &e.name {
                out.push_str(&format!("<EpName>{}</EpName>", escape_xml(name)));
            }
            if let Some(idle) = e.idle {
                out.push_str(&format!("<Idle>{idle}</Idle>"));
            }
            if let Some(t) = e.client_type {
                out.push_str(&format!("<ClientType>{t}</ClientType>"));
            }
            if let Some(state) = e.state {
                out.push_str(&format!("<State>{}</State>", state.code()));
            }
            out.push_str("</PrivateEndpointData>");
        }
    }
    out.push_str("</Data>");
    out
}

/// The text of the `PSM` in a personal-message document (`UUX`'s payload).
pub fn status_of(document: &str) -> String {
    Element::parse(document).and_then(|d| d.text_at(&["PSM"]).map(str::to_string)).unwrap_or_default()
}

/// A personal-message document with its `PSM` set to `status`, keeping
/// whatever else it held (`CurrentMedia`, `MachineGuid`).
pub fn with_status(document: Option<&str>, status: &str) -> String {
    let psm = format!("<PSM>{}</PSM>", escape_xml(status));
    match document.and_then(Element::parse).filter(|d| d.name == "Data") {
        Some(d) => {
            let rest = flat_elements(d.children.iter().filter(|c| c.name != "PSM"));
            format!("<Data>{psm}{rest}</Data>")
        }
        None => format!("<Data>{psm}<CurrentMedia></CurrentMedia></Data>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uux_documents_split_into_message_and_endpoint() {
        let d = UuxDocument::parse(
            "<Data><PSM>hi</PSM><CurrentMedia></CurrentMedia><MachineGuid>{x}</MachineGuid><EndpointData><Capabilities>2788999228:48</Capabilities></EndpointData></Data>",
        )
        .unwrap();
        assert_eq!(
            d.personal.as_deref(),
            Some("<Data><PSM>hi</PSM><CurrentMedia></CurrentMedia><MachineGuid>{x}</MachineGuid></Data>")
        );
        assert_eq!(d.capabilities, Some(Capabilities { basic: 2788999228, extended: 48 }));
        let p = UuxDocument::parse(
            "<PrivateEndpointData><EpName>Laptop</EpName><Idle>false</Idle><ClientType>1</ClientType><State>BSY</State></PrivateEndpointData>",
        )
        .unwrap();
        assert_eq!(p.personal, None);
        assert_eq!(
            (p.name.as_deref(), p.idle, p.client_type, p.state),
            (Some("Laptop"), Some(false), Some(1), Some(OnlineState::Busy))
        );
        assert_eq!(UuxDocument::parse("<Other/>"), None);
        assert_eq!(UuxDocument::parse("nonsense"), None);
    }

    #[test]
    fn each_dialect_gets_the_ubx_it_shows() {
        use crate::Dialect;
        let e = EndpointData {
            machine: MachineGuid::parse("{11111111-1111-4111-8111-111111111111}"),
            ..Default::default()
        };
        let doc = "<Data><PSM>hi</PSM></Data>";
        assert_eq!(ubx_document(Dialect::Msnp8, Some(doc), &[], false), None);
        assert_eq!(ubx_document(Dialect::Msnp15, Some(doc), std::slice::from_ref(&e), false).as_deref(), Some(doc));
        let wlm = ubx_document(Dialect::Msnp18, Some(doc), std::slice::from_ref(&e), false).unwrap();
        assert!(wlm.contains("<EndpointData id=") && !wlm.contains("Private"), "{wlm}");
        assert!(ubx_document(Dialect::Msnp18, None, &[e], true).unwrap().contains("<PrivateEndpointData"));
        assert_eq!(ubx_document(Dialect::Msnp18, None, &[], false), None);
    }

    #[test]
    fn ubx_lists_endpoints_and_private_data_only_for_the_owner() {
        let g = MachineGuid::parse("{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}").unwrap();
        let e = EndpointData {
            machine: Some(g),
            capabilities: Capabilities { basic: 1, extended: 2 },
            name: Some("Den <PC>".into()),
            idle: Some(true),
            client_type: Some(1),
            state: Some(OnlineState::Away),
        };
        let public = with_endpoints(Some("<Data><PSM>x</PSM></Data>"), std::slice::from_ref(&e), false);
        assert_eq!(
            public,
            "<Data><PSM>x</PSM><EndpointData id=\"{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}\"><Capabilities>1:2</Capabilities></EndpointData></Data>"
        );
        let own = with_endpoints(None, &[e], true);
        assert!(own.contains("<PrivateEndpointData id=\"{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}\"><EpName>Den &lt;PC&gt;</EpName><Idle>true</Idle><ClientType>1</ClientType><State>AWY</State></PrivateEndpointData>"), "{own}");
        assert_eq!(status_of(&own), "");
    }

    #[test]
    fn the_status_lives_in_the_document() {
        let doc = "<Data><PSM>old</PSM><CurrentMedia>\\0Music\\01\\0{0}\\0Song\\0</CurrentMedia></Data>";
        assert_eq!(status_of(doc), "old");
        let new = with_status(Some(doc), "new & <better>");
        assert_eq!(status_of(&new), "new & <better>");
        assert!(new.contains("<CurrentMedia>\\0Music"), "{new}");
        assert_eq!(status_of(&with_status(None, "x")), "x");
        assert_eq!(status_of("not xml"), "");
    }
}
