//! The web messenger's live channel: every frame a page may send.

use webchat::{ClientFrame, MAX_FRAME, Unreadable};

/// Any text as a page's frame: read without panic; a frame taken is within
/// its limits and writes back to the same frame; one over the frame limit
/// is refused before it is read.
pub fn webchat_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientFrame::parse(text) {
        Ok(frame) => {
            let written = frame.encode();
            assert_eq!(ClientFrame::parse(&written), Ok(frame), "{written}");
        }
        Err(Unreadable::TooLarge) => assert!(text.len() > MAX_FRAME),
        Err(_) => {}
    }
}
