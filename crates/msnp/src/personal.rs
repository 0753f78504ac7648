//! The personal-message document (`UUX`'s payload, `UBX` to watchers):
//! `<Data><PSM>...</PSM><CurrentMedia>...</CurrentMedia>...</Data>`. The
//! storage service's `PersonalStatus` is its `PSM`.

use crate::soap::{Element, escape_xml};

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
            let rest: String = d
                .children
                .iter()
                .filter(|c| c.name != "PSM")
                .map(|c| format!("<{n}>{t}</{n}>", n = c.name, t = escape_xml(&c.text)))
                .collect();
            format!("<Data>{psm}{rest}</Data>")
        }
        None => format!("<Data>{psm}<CurrentMedia></CurrentMedia></Data>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
