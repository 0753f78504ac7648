//! The messenger's two pages: signing in, and the messenger's frame, which
//! `messenger.js` fills. Every value put in is escaped by `maud`.

use maud::{DOCTYPE, Markup, html};

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) }
            link rel="icon" href="/messenger/assets/icon.svg";
            link rel="stylesheet" href="/messenger/assets/messenger.css";
        }
    }
}

/// The sign-in page, with a refusal to show when there is one.
pub fn sign_in(refusal: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in · Mariposa Web Messenger"))
            body class="signin" {
                main class="card" {
                    h1 { img src="/messenger/assets/icon.svg" alt="" width="32" height="32"; " Mariposa Web Messenger" }
                    p { "Sign in with your Messenger address and password." }
                    @if let Some(text) = refusal {
                        p class="error" id="error" role="alert" { (text) }
                    }
                    form method="post" action="/messenger/login" {
                        label for="email" { "E-mail address" }
                        input id="email" name="email" type="email" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                        button id="sign-in" type="submit" { "Sign in" }
                    }
                    p class="small" {
                        a href="/signup" { "Get an account" } " · " a href="/password" { "Change your password" }
                    }
                }
            }
        }
    }
}

/// The messenger's frame for `handle`; the script connects and fills it.
pub fn messenger(handle: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Mariposa Web Messenger"))
            body class="app" data-handle=(handle) {
                header class="bar" {
                    img class="me-picture" id="me-picture" src="/messenger/assets/icon.svg" alt="";
                    div class="me" {
                        input id="me-name" class="plain" aria-label="Your name" maxlength="129";
                        input id="me-personal" class="plain small" aria-label="Your personal message"
                            placeholder="Type a personal message" maxlength="129";
                    }
                    select id="me-state" aria-label="Your status" {
                        option value="online" { "Online" }
                        option value="busy" { "Busy" }
                        option value="brb" { "Be right back" }
                        option value="away" { "Away" }
                        option value="phone" { "On the phone" }
                        option value="lunch" { "Out to lunch" }
                        option value="hidden" { "Appear offline" }
                    }
                    label class="button" for="picture-file" title="Change your display picture" { "Picture" }
                    input id="picture-file" type="file" accept="image/png,image/jpeg,image/gif" hidden;
                    form method="post" action="/messenger/logout" {
                        button id="sign-out" type="submit" { "Sign out" }
                    }
                }
                p id="connection" class="connection" role="status" aria-live="polite" {}
                div class="panes" {
                    nav class="contacts-pane" aria-label="Contacts" {
                        div id="requests" class="requests" aria-live="polite" {}
                        form id="add-form" class="add" {
                            input id="add-handle" type="email" placeholder="Add a contact by e-mail" aria-label="Add a contact by e-mail";
                            button id="add" type="submit" { "Add" }
                        }
                        ul id="contacts" class="contacts" {}
                    }
                    section class="chat-pane" aria-label="Conversations" {
                        div id="tabs" class="tabs" role="tablist" {}
                        div id="conversation" class="conversation" {
                            p class="empty" { "Choose a contact to start a conversation." }
                        }
                    }
                }
                script src="/messenger/assets/messenger.js" {}
            }
        }
    }
}
