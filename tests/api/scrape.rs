//! Reading `/metrics` as Prometheus does: samples by name and labels, in
//! whatever order the exporter writes labels and series.

use crate::helpers::RelayClient;

/// One scrape of `/metrics`.
pub struct Scrape {
    pub text: String,
}

/// A sample: name, labels (name, value), value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// A sample line: name, labels, value.
fn parse_line(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let body = rest.strip_suffix('}')?;
            // The relay's label values never hold `,` or `"` (ids, codes,
            // reasons), so a plain split is enough here.
            let labels = body
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    Some((name, labels, value))
}

impl Scrape {
    pub async fn of(c: &RelayClient) -> Scrape {
        let r = c.get("/metrics", None).await;
        assert_eq!(r.status(), 200, "/metrics");
        Scrape {
            text: r.text().await.unwrap(),
        }
    }

    /// The sum of the samples named `name` whose labels include all of
    /// `labels` (0 when there are none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.text
            .lines()
            .filter_map(parse_line)
            .filter(|(n, ls, _)| *n == name && labels.iter().all(|l| ls.contains(l)))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// [`Scrape::sum`] of a counter, as a count.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.sum(name, labels) as u64
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.text
            .lines()
            .filter_map(parse_line)
            .any(|(n, _, _)| n == name)
    }

    /// Every sample name in the scrape.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.text
            .lines()
            .filter_map(parse_line)
            .map(|(n, _, _)| n.to_string())
            .collect()
    }
}

/// `wimz_refused_total{reason}` now.
pub async fn refused(c: &RelayClient, reason: &str) -> u64 {
    Scrape::of(c)
        .await
        .count("wimz_refused_total", &[("reason", reason)])
}
