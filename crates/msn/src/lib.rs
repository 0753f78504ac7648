//! The `msn` messenger: settings, local history, and the terminal app.
//!
//! The app ([`app::App`]) is a state machine fed with client events and key
//! events and drawn with ratatui; the binary wires it to a real terminal, and
//! tests drive it with real key events on ratatui's test backend.

pub mod app;
pub mod history;
pub mod settings;
