//! The pages' HTML, written with `maud`: checked when the crate compiles,
//! and every value put into a page escaped unless marked otherwise (names,
//! handles and messages come from users).

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The pages' one style sheet, inline: the pages need nothing else.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#222}\
label{display:block;margin:.6rem 0 .2rem} input{font:inherit;padding:.3rem;width:20rem;max-width:100%}\
button{font:inherit;padding:.3rem .8rem;margin-top:.8rem} table{border-collapse:collapse}\
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}\
.error{color:#a00} .ok{color:#060} nav a{margin-right:1rem}";

/// A whole page around `body`.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Mariposa" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/" { "Mariposa" }
                    a href="/messenger" { "Web Messenger" }
                    a href="/signup" { "Sign up" }
                    a href="/password" { "Change password" }
                    a href="/admin" { "Operator" }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

/// A note above a form: `kind` is `error` or `ok`.
pub fn message(kind: &str, text: &str) -> Markup {
    html! { p class=(kind) id=(kind) { (text) } }
}

/// The public status page's body.
pub fn status(online: usize, conversations: usize, uptime_secs: u64) -> Markup {
    html! {
        p { "A Mariposa MSN Messenger service." }
        table {
            tr { th { "Users online" } td id="online" { (online) } }
            tr { th { "Conversations" } td { (conversations) } }
            tr {
                th { "Up for" }
                td { (uptime_secs / 86400) "d " (uptime_secs / 3600 % 24) "h " (uptime_secs / 60 % 60) "m" }
            }
        }
    }
}

pub fn signup_form(invite: bool, note: Option<Markup>) -> Markup {
    html! {
        @if let Some(note) = note { (note) }
        form method="post" action="/signup" {
            label for="email" { "E-mail address (your sign-in name)" }
            input id="email" name="email" type="email" required;
            label for="name" { "Display name" }
            input id="name" name="name";
            label for="password" { "Password" }
            input id="password" name="password" type="password" required;
            label for="password2" { "Password again" }
            input id="password2" name="password2" type="password" required;
            @if invite {
                label for="code" { "Invite code" }
                input id="code" name="code" required;
            }
            button id="submit" type="submit" { "Create the account" }
        }
    }
}

pub fn password_form(note: Option<Markup>) -> Markup {
    html! {
        @if let Some(note) = note { (note) }
        form method="post" action="/password" {
            label for="email" { "E-mail address" }
            input id="email" name="email" type="email" required;
            label for="old" { "Current password" }
            input id="old" name="old" type="password" required;
            label for="new" { "New password" }
            input id="new" name="new" type="password" required;
            label for="new2" { "New password again" }
            input id="new2" name="new2" type="password" required;
            button id="submit" type="submit" { "Change it" }
        }
    }
}

pub fn login_form(note: Option<Markup>) -> Markup {
    html! {
        @if let Some(note) = note { (note) }
        form method="post" action="/admin/login" {
            label for="email" { "Operator's e-mail address" }
            input id="email" name="email" type="email" required;
            label for="password" { "Password" }
            input id="password" name="password" type="password" required;
            button id="submit" type="submit" { "Sign in" }
        }
    }
}

/// One signed-in session on the operator page.
pub struct SessionRow {
    pub handle: String,
    pub state: String,
    pub dialect: String,
}

/// One account on the operator page.
pub struct AccountRow {
    pub handle: String,
    pub friendly: String,
    pub contacts: usize,
    pub disabled: bool,
}

/// The operator page's body. Every form carries the session's
/// anti-forgery token.
pub fn operator(me: &str, csrf: &str, sessions: &[SessionRow], accounts: &[AccountRow]) -> Markup {
    let hidden = html! { input type="hidden" name="csrf" value=(csrf); };
    html! {
        p {
            "Signed in as " (me) ". "
            form method="post" action="/admin/logout" style="display:inline" { (hidden) button { "Sign out" } }
        }
        h2 { "Signed in now (" (sessions.len()) ")" }
        table id="sessions" {
            tr { th { "Account" } th { "State" } th { "Dialect" } th {} }
            @for s in sessions {
                tr {
                    td { (s.handle) } td { (s.state) } td { (s.dialect) }
                    td {
                        form method="post" action="/admin/kick" {
                            (hidden)
                            input type="hidden" name="handle" value=(s.handle);
                            button id={ "kick-" (s.handle) } { "Kick" }
                        }
                    }
                }
            }
        }
        h2 { "Accounts (" (accounts.len()) ")" }
        table id="accounts" {
            tr { th { "Account" } th { "Name" } th { "Contacts" } th {} }
            @for a in accounts {
                @let (label, value) = if a.disabled { ("Enable", "0") } else { ("Disable", "1") };
                tr {
                    td { (a.handle) } td { (a.friendly) } td { (a.contacts) }
                    td {
                        form method="post" action="/admin/disable" {
                            (hidden)
                            input type="hidden" name="handle" value=(a.handle);
                            input type="hidden" name="disable" value=(value);
                            button id={ (label.to_ascii_lowercase()) "-" (a.handle) } { (label) }
                        }
                    }
                }
            }
        }
        h2 { "Message to everyone signed in" }
        form method="post" action="/admin/broadcast" {
            (hidden)
            input id="text" name="text" required;
            button id="broadcast" { "Send" }
        }
    }
}
