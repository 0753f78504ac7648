//! The messenger's files, built into the binary: `msnd` alone serves them,
//! with nothing fetched from elsewhere at run time.

const SCRIPT: &[u8] = include_bytes!("assets/messenger.js");
const STYLE: &[u8] = include_bytes!("assets/messenger.css");
const ICON: &[u8] = include_bytes!("assets/icon.svg");

/// The emoticon pictures, by file name; `messenger.js` maps the classic
/// text codes to them.
const EMOTICONS: &[(&str, &[u8])] = &[
    ("angry.svg", include_bytes!("assets/emoticons/angry.svg")),
    ("broken-heart.svg", include_bytes!("assets/emoticons/broken-heart.svg")),
    ("coffee.svg", include_bytes!("assets/emoticons/coffee.svg")),
    ("confused.svg", include_bytes!("assets/emoticons/confused.svg")),
    ("cool.svg", include_bytes!("assets/emoticons/cool.svg")),
    ("cry.svg", include_bytes!("assets/emoticons/cry.svg")),
    ("embarrassed.svg", include_bytes!("assets/emoticons/embarrassed.svg")),
    ("grin.svg", include_bytes!("assets/emoticons/grin.svg")),
    ("heart.svg", include_bytes!("assets/emoticons/heart.svg")),
    ("kiss.svg", include_bytes!("assets/emoticons/kiss.svg")),
    ("neutral.svg", include_bytes!("assets/emoticons/neutral.svg")),
    ("rose.svg", include_bytes!("assets/emoticons/rose.svg")),
    ("sad.svg", include_bytes!("assets/emoticons/sad.svg")),
    ("smile.svg", include_bytes!("assets/emoticons/smile.svg")),
    ("star.svg", include_bytes!("assets/emoticons/star.svg")),
    ("surprised.svg", include_bytes!("assets/emoticons/surprised.svg")),
    ("thumbs-down.svg", include_bytes!("assets/emoticons/thumbs-down.svg")),
    ("thumbs-up.svg", include_bytes!("assets/emoticons/thumbs-up.svg")),
    ("tongue.svg", include_bytes!("assets/emoticons/tongue.svg")),
    ("wink.svg", include_bytes!("assets/emoticons/wink.svg")),
];

/// An asset by file name: its type and bytes.
pub fn find(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "messenger.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "messenger.css" => Some(("text/css; charset=utf-8", STYLE)),
        "icon.svg" => Some(("image/svg+xml", ICON)),
        _ => EMOTICONS.iter().find(|(n, _)| *n == name).map(|(_, body)| ("image/svg+xml", *body)),
    }
}

/// Whether `body` starts as a picture of type `mime` does, so that what is
/// served back as a picture is one.
pub fn looks_like(mime: &str, body: &[u8]) -> bool {
    match mime {
        "image/png" => body.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => body.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => body.starts_with(b"GIF87a") || body.starts_with(b"GIF89a"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_nothing_else() {
        assert!(find("messenger.js").is_some_and(|(m, b)| m.starts_with("text/javascript") && !b.is_empty()));
        assert!(find("smile.svg").is_some_and(|(m, _)| m == "image/svg+xml"));
        assert!(find("../Cargo.toml").is_none() && find("").is_none());
        for (name, body) in EMOTICONS {
            assert!(body.starts_with(b"<svg"), "{name}");
        }
    }

    #[test]
    fn pictures_are_told_by_their_first_bytes() {
        assert!(looks_like("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!looks_like("image/png", b"<html>"));
        assert!(!looks_like("image/svg+xml", b"<svg"));
    }
}
