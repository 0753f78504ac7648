//! What the server says of contacts (presence, personal messages, signing
//! out), applied to the client's state and told as events: one place for
//! the older dialects' lines and MSNP21's documents alike.

use msnp::OnlineState;
use msnp::reply::PresenceLine;

use crate::event::Event;
use crate::shared::Shared;

/// A contact signed out.
pub(crate) fn offline(shared: &Shared, handle: String) {
    if let Some(c) = shared.state.lock().expect("state lock").contacts.get_mut(&handle.to_ascii_lowercase()) {
        c.state = OnlineState::Offline;
        c.presence_name = None;
    }
    shared.emit(Event::Offline { handle });
}

/// A contact's personal message.
pub(crate) fn personal_message(shared: &Shared, handle: String, text: String) {
    if let Some(c) = shared.state.lock().expect("state lock").contacts.get_mut(&handle.to_ascii_lowercase()) {
        c.personal_message = Some(text.clone());
    }
    shared.emit(Event::PersonalMessage { handle, text });
}

pub(crate) fn presence(shared: &Shared, p: PresenceLine) {
    {
        let mut s = shared.state.lock().expect("state lock");
        let c = s.contact_mut(&p.handle);
        c.state = p.state;
        c.presence_name = Some(p.friendly.clone());
        c.client_id = p.client_id;
    }
    shared.emit(Event::Presence { handle: p.handle, friendly: p.friendly, state: p.state.code().to_string() });
}
