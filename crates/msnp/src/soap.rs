//! The little SOAP the services of MSNP8-12 clients need: reading a few
//! elements and attributes out of an envelope, and escaping text for one.
//! Namespace prefixes are ignored; nothing here builds a DOM, so hostile
//! input costs one linear scan.

/// The unescaped text of every element with this local name.
pub fn element_texts(xml: &str, local: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        let name = name.rsplit(':').next().unwrap_or(name);
        let self_closing = tag.ends_with('/');
        rest = &rest[gt + 1..];
        let text = (name == local && !tag.starts_with('/') && !self_closing)
            .then(|| rest.find("</"))
            .flatten()
            .and_then(|end| unescape_xml(&rest[..end]));
        out.extend(text);
    }
    out
}

/// Replaces the five XML entities and numeric character references.
pub fn unescape_xml(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => char::from_u32(u32::from_str_radix(&e[2..], 16).ok()?)?,
            e if e.starts_with('#') => char::from_u32(e[1..].parse().ok()?)?,
            _ => return None,
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Escapes text for XML content.
pub fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// The first element with this local name.
pub fn element_text(xml: &str, local: &str) -> Option<String> {
    element_texts(xml, local).into_iter().next()
}

/// The value of `attribute` on the first element with local name `element`.
pub fn attribute(xml: &str, element: &str, attribute: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let gt = rest.find('>')?;
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        if name.rsplit(':').next() != Some(element) {
            continue;
        }
        let mut attrs = &tag[name.len()..];
        while let Some(eq) = attrs.find('=') {
            let key = attrs[..eq].trim();
            let after = attrs[eq + 1..].trim_start();
            let quote = after.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let end = after[1..].find(quote)? + 1;
            if key.rsplit(':').next() == Some(attribute) {
                return unescape_xml(&after[1..end]);
            }
            attrs = &after[end + 1..];
        }
        return None;
    }
    None
}

/// An OIM `StoreMessage` request (MSNP13 shape), as our client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMessage {
    pub from: String,
    pub from_friendly: Option<String>,
    pub to: String,
    /// The sender's web ticket (`t=...&p=...` or the bare token).
    pub ticket: String,
    /// The message: a MIME text message.
    pub content: String,
}

/// Parses a `StoreMessage` envelope.
pub fn parse_store_message(xml: &str) -> Option<StoreMessage> {
    Some(StoreMessage {
        from: attribute(xml, "From", "memberName")?,
        from_friendly: attribute(xml, "From", "friendlyName"),
        to: attribute(xml, "To", "memberName")?,
        ticket: attribute(xml, "Ticket", "passport")?,
        content: element_text(xml, "Content")?,
    })
}

/// The web ticket in a `PassportCookie` header (`<t>...</t>`).
pub fn passport_cookie(xml: &str) -> Option<String> {
    element_text(xml, "t")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_attributes() {
        let xml = r#"<soap:Envelope><soap:Header><From memberName="alice@x.com" friendlyName="=?utf-8?B?QWxpY2U=?=" xml:lang="en-US"/><To memberName='bob@x.com'/><Ticket passport="t=abc&amp;p=def" appid="X"/></soap:Header><soap:Body><MessageType>text</MessageType><Content>MIME-Version: 1.0&#13;&#10;hi</Content></soap:Body></soap:Envelope>"#;
        let m = parse_store_message(xml).unwrap();
        assert_eq!(m.from, "alice@x.com");
        assert_eq!(m.to, "bob@x.com");
        assert_eq!(m.ticket, "t=abc&p=def");
        assert_eq!(m.content, "MIME-Version: 1.0\r\nhi");
        assert_eq!(attribute(xml, "From", "nothere"), None);
        assert_eq!(passport_cookie("<PassportCookie><t>tok</t><p>x</p></PassportCookie>").as_deref(), Some("tok"));
        assert_eq!(parse_store_message("<a/>"), None);
        assert_eq!(attribute("<From memberName=unquoted/>", "From", "memberName"), None);
    }
}
