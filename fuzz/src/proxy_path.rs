//! Target `proxy_path`: `proxy_paths::normalise` and `AllowList::check`,
//! what `ANY /api/devices/{id}/robot/{path}` runs on the raw path before a
//! REST call is handed to a robot.
//!
//! Input lines: the method, the raw path (the part after `.../robot/`),
//! then allow-list rules; with no rule lines, the default list
//! (`proxy.allowed_paths`).
//!
//! Properties: never a panic; a normalised path is `/` + the raw path
//! unchanged (suspicious paths are refused, never "fixed"), has no empty,
//! `.` or `..` segment and only `[A-Za-z0-9._~-]` in segments (so no `%`,
//! `\`, `?`, `#`, NUL or control character reaches the robot); a path is
//! allowed iff some rule the list kept matches it segment by segment (`*`
//! one segment, a final `**` one or more, the method when the rule names
//! one), so an allowed path never leaves the prefixes its rule spells out;
//! with the default list every allowed path is under `/missions`,
//! `/programs`, `/reports` or `/mode`.

use wimz_relay::config::ProxySettings;
use wimz_relay::proxy_paths::{normalise, AllowList, Rule};

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// The allow-list's meaning, written out plainly: the rule's method (if
/// any, any case) and its segments against the path's.
fn rule_allows(rule: &str, method: &str, path: &[&str]) -> bool {
    let rule = rule.trim();
    let (rule_method, pattern) = match rule.split_once(char::is_whitespace) {
        Some((m, p)) => (Some(m.trim()), p.trim()),
        None => (None, rule),
    };
    if rule_method.is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
        return false;
    }
    let pattern: Vec<&str> = pattern[1..].split('/').collect();
    if pattern.last() == Some(&"**") {
        let fixed = &pattern[..pattern.len() - 1];
        return path.len() > fixed.len()
            && fixed.iter().zip(path).all(|(r, p)| *r == "*" || r == p);
    }
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(r, p)| *r == "*" || r == p)
}

/// `proxy_path`.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let raw = lines.next().unwrap_or_default();
    let given: Vec<String> = lines.map(String::from).collect();
    let defaults = given.is_empty();
    let rules = if defaults {
        ProxySettings::default().allowed_paths
    } else {
        given
    };
    let list = AllowList::new(&rules);
    let kept: Vec<&String> = rules.iter().filter(|r| Rule::parse(r).is_some()).collect();

    let normalised = normalise(raw);
    match &normalised {
        Some(p) => {
            assert_eq!(*p, format!("/{raw}"), "path was rewritten");
            assert!(p[1..].split('/').all(segment_ok), "bad segment kept: {p:?}");
        }
        None => assert!(
            raw.is_empty() || !raw.split('/').all(segment_ok),
            "good path refused: {raw:?}"
        ),
    }
    let allowed = list.check(method, raw);
    let expected = normalised.as_ref().filter(|p| {
        let segments: Vec<&str> = p[1..].split('/').collect();
        kept.iter().any(|r| rule_allows(r, method, &segments))
    });
    assert_eq!(
        allowed.as_ref(),
        expected,
        "{method} {raw:?} against {kept:?}"
    );
    if let (Some(p), true) = (&allowed, defaults) {
        let top = p[1..].split('/').next().unwrap_or_default();
        assert!(
            matches!(top, "missions" | "programs" | "reports" | "mode"),
            "default list allowed {p:?}"
        );
    }
}
