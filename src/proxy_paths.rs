//! The REST proxy's allow-list (PROTOCOL.md §6): normalising a requested
//! path and matching it against `proxy.allowed_paths` rules.
//!
//! A rule is `METHOD /seg/seg` or `/seg/seg` (any method); `*` matches exactly
//! one segment and a final `**` matches one or more. Paths are normalised
//! before matching, and anything that could step outside the rule
//! (`..`, `.`, encoded slashes or backslashes, NUL, doubled slashes) is refused
//! rather than "fixed".

/// `proxy.allowed_paths` by default: the WIM-Z robot API an app uses
/// remotely.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "GET /missions/available",
    "GET /missions/status",
    "POST /missions/start",
    "POST /missions/stop",
    "POST /missions/pause",
    "POST /missions/resume",
    "GET /programs/available",
    "GET /programs/status",
    "POST /programs/start",
    "POST /programs/stop",
    "POST /programs/pause",
    "POST /programs/resume",
    "POST /programs/create",
    "DELETE /programs/*",
    "GET /reports/weekly",
    "GET /reports/dog/*",
    "GET /reports/trends",
    "GET /reports/compare",
    "GET /mode",
    "POST /mode",
];

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    method: Option<String>,
    segments: Vec<String>,
}

impl Rule {
    pub fn parse(s: &str) -> Option<Rule> {
        let s = s.trim();
        let (method, path) = match s.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m.trim().to_ascii_uppercase()), p.trim()),
            None => (None, s),
        };
        if let Some(m) = &method {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return None;
            }
        }
        if !path.starts_with('/') || path.contains("//") {
            return None;
        }
        let segments: Vec<String> = path[1..].split('/').map(String::from).collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return None;
        }
        if let Some(pos) = segments.iter().position(|s| s == "**") {
            if pos != segments.len() - 1 {
                return None;
            }
        }
        Some(Rule { method, segments })
    }

    fn matches(&self, method: &str, segments: &[&str]) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        let mut i = 0;
        for (k, rule_seg) in self.segments.iter().enumerate() {
            if rule_seg == "**" {
                return segments.len() > k;
            }
            let Some(seg) = segments.get(i) else {
                return false;
            };
            if rule_seg != "*" && rule_seg != seg {
                return false;
            }
            i += 1;
        }
        i == segments.len()
    }
}

/// The compiled allow-list.
#[derive(Debug, Clone)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    pub fn new(patterns: &[String]) -> AllowList {
        AllowList {
            rules: patterns.iter().filter_map(|p| Rule::parse(p)).collect(),
        }
    }

    /// The normalised path (`/missions/start`) when `method` may call `raw`;
    /// `None` when it may not or the path is suspicious.
    pub fn check(&self, method: &str, raw: &str) -> Option<String> {
        let path = normalise(raw)?;
        let segments: Vec<&str> = path[1..].split('/').collect();
        self.rules
            .iter()
            .any(|r| r.matches(method, &segments))
            .then_some(path)
    }
}

/// `missions/start` (the part after `.../robot/`) -> `/missions/start`;
/// `None` for any path that is empty, holds a dot segment or an empty
/// segment (a leading, doubled or trailing `/`), a percent sign (no encoded
/// characters at all: robots' paths are plain), a backslash, or a control
/// character.
pub fn normalise(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for seg in raw.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return None;
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        {
            return None;
        }
        out.push('/');
        out.push_str(seg);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> AllowList {
        let list: Vec<String> = DEFAULT_ALLOWED.iter().copied().map(String::from).collect();
        AllowList::new(&list)
    }

    #[test]
    fn default_list_allows_the_robot_api() {
        let a = defaults();
        for (m, p) in [
            ("GET", "missions/available"),
            ("POST", "missions/start"),
            ("GET", "missions/status"),
            ("POST", "missions/stop"),
            ("POST", "programs/create"),
            ("DELETE", "programs/evening_routine"),
            ("GET", "reports/weekly"),
            ("GET", "reports/dog/rex-1"),
            ("GET", "reports/compare"),
            ("GET", "mode"),
            ("POST", "mode"),
        ] {
            assert_eq!(a.check(m, p), Some(format!("/{p}")), "{m} {p}");
        }
    }

    #[test]
    fn refuses_methods_paths_and_traversal() {
        let a = defaults();
        assert_eq!(a.check("DELETE", "missions/start"), None);
        assert_eq!(a.check("GET", "admin"), None);
        assert_eq!(a.check("GET", "reports/dog"), None);
        assert_eq!(a.check("GET", "reports/dog/a/b"), None);
        for bad in [
            "missions/../admin",
            "missions/./start",
            "missions//start",
            "missions%2fstart",
            "missions%2Fstart",
            "reports/dog/..",
            "reports/dog/%2e%2e",
            "mode\\..\\admin",
            "",
            "/",
            "reports/dog/a\u{0}b",
        ] {
            assert_eq!(a.check("GET", bad), None, "{bad:?}");
            assert_eq!(a.check("POST", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rule_syntax() {
        assert!(Rule::parse("GET /a/*").is_some());
        assert!(Rule::parse("/a/**").is_some());
        assert!(Rule::parse("/a/**/b").is_none());
        assert!(Rule::parse("get /a").is_some());
        assert!(Rule::parse("a/b").is_none());
        assert!(Rule::parse("GET /a/../b").is_none());
        let any = AllowList::new(&["/files/**".to_string()]);
        assert!(any.check("PUT", "files/a/b/c").is_some());
        assert!(any.check("PUT", "files").is_none());
    }
}
