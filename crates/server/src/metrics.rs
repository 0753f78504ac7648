//! `/metrics`: the node's state in Prometheus' text exposition format.
//!
//! Gauges are read at scrape time (users by state walks the registry: a
//! scrape every few seconds costs less than one sign-in burst); counters are
//! the atomics the sessions bump as they go.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use msnp::OnlineState;

use crate::shared::{Role, Shared};

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every metric.
pub fn render(shared: &Shared, uptime: Duration) -> String {
    let mut out = String::with_capacity(4096);
    let backend = &shared.backend;
    let stats = backend.stats();
    let c = &shared.counters;

    family(&mut out, "msnd_users_online", "gauge", "Users signed in on this node, by state (FLN: not yet online).");
    let mut by_state: Vec<(OnlineState, u64)> = Vec::new();
    for user in backend.registry().all() {
        let p = user.presence();
        let state = if p.started { p.state } else { OnlineState::Offline };
        match by_state.iter_mut().find(|(s, _)| *s == state) {
            Some((_, n)) => *n += 1,
            None => by_state.push((state, 1)),
        }
    }
    for state in OnlineState::ALL {
        let n = by_state.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "msnd_users_online{{state=\"{}\"}} {n}", state.code());
    }

    family(&mut out, "msnd_connections", "gauge", "Open client connections, by role.");
    for (role, name) in Role::ALL {
        let _ = writeln!(
            out,
            "msnd_connections{{role=\"{name}\"}} {}",
            shared.by_role[role as usize].load(Ordering::Relaxed)
        );
    }

    family(&mut out, "msnd_switchboard_sessions", "gauge", "Switchboard sessions open on this node.");
    let _ = writeln!(out, "msnd_switchboard_sessions {}", backend.switchboards().len());

    family(&mut out, "msnd_logins_total", "counter", "Checked logins, by outcome.");
    for (result, n) in [
        ("succeeded", &stats.logins_succeeded),
        ("failed", &stats.logins_failed),
        ("slowed", &stats.logins_slowed),
        ("refused", &stats.logins_refused),
    ] {
        let _ = writeln!(out, "msnd_logins_total{{result=\"{result}\"}} {}", n.load(Ordering::Relaxed));
    }

    let counters = [
        ("msnd_messages_relayed_total", "Switchboard messages relayed.", &stats.messages_relayed),
        (
            "msnd_offline_messages_stored_total",
            "Offline messages kept for a recipient.",
            &stats.offline_messages_stored,
        ),
        ("msnd_refused_connections_total", "Connections refused at accept (limits).", &c.refused_connections),
        ("msnd_abuse_disconnects_total", "Connections closed for flooding.", &c.abuse_disconnects),
        ("msnd_challenges_failed_total", "Wrong QRY answers.", &c.challenges_failed),
        ("msnd_challenges_unanswered_total", "CHL challenges not answered in time.", &c.challenges_unanswered),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }

    family(&mut out, "msnd_rate_limited_total", "counter", "Requests refused by flood control, by kind.");
    for (action, n) in [
        ("messages", &stats.rate_limited_messages),
        ("data", &stats.rate_limited_data),
        ("invitations", &stats.rate_limited_invitations),
        ("list_changes", &stats.rate_limited_list_changes),
        ("state_changes", &stats.rate_limited_state_changes),
        ("offline_messages", &stats.rate_limited_offline_messages),
        ("sign_ups", &stats.rate_limited_sign_ups),
    ] {
        let _ = writeln!(out, "msnd_rate_limited_total{{action=\"{action}\"}} {}", n.load(Ordering::Relaxed));
    }

    family(&mut out, "msnd_store_seconds", "histogram", "Time of each store call, durable commit included.");
    let (buckets, count, sum) = stats.store_latency.snapshot();
    for (bound, n) in buckets {
        let _ = writeln!(out, "msnd_store_seconds_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "msnd_store_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "msnd_store_seconds_sum {sum}\nmsnd_store_seconds_count {count}");

    family(&mut out, "msnd_uptime_seconds", "gauge", "Seconds since this node started.");
    let _ = writeln!(out, "msnd_uptime_seconds {}", uptime.as_secs());
    out
}
