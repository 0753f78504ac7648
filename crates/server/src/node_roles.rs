//! Which of the servers a node runs (`--role`): dispatch, notification,
//! switchboard, the HTTP services, or all of them.

/// What a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub dispatch: bool,
    pub notification: bool,
    pub switchboard: bool,
    pub http: bool,
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Roles::ALL {
            return f.write_str("all");
        }
        let names = [
            (self.dispatch, "dispatch"),
            (self.notification, "notification"),
            (self.switchboard, "switchboard"),
            (self.http, "http"),
        ];
        let on: Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        f.write_str(&on.join(","))
    }
}

impl std::str::FromStr for Roles {
    type Err = String;

    /// Parses `dispatch,notification,...` or `all`.
    fn from_str(text: &str) -> Result<Roles, String> {
        let mut roles = Roles::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => roles = Roles::ALL,
                "dispatch" => roles.dispatch = true,
                "notification" => roles.notification = true,
                "switchboard" => roles.switchboard = true,
                "http" => roles.http = true,
                other => {
                    return Err(format!("unknown role {other:?} (dispatch, notification, switchboard, http, all)"));
                }
            }
        }
        if roles == Roles::default() { Err("no role given".into()) } else { Ok(roles) }
    }
}

impl Roles {
    pub const ALL: Roles = Roles { dispatch: true, notification: true, switchboard: true, http: true };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse() {
        assert_eq!("all".parse::<Roles>().unwrap(), Roles::ALL);
        let r = "dispatch, switchboard".parse::<Roles>().unwrap();
        assert!(r.dispatch && r.switchboard && !r.notification && !r.http);
        assert!("dispatcher".parse::<Roles>().is_err());
        assert!("".parse::<Roles>().is_err());
    }
}
