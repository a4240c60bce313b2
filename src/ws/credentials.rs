//! What a socket presents before it is upgraded (PROTOCOL.md §3), read from
//! the request's headers and query string: a robot's device token or
//! signature, an app's token and the device it names first. Nothing here
//! verifies anything (`ws/mod.rs` does, with the token service, the store
//! and the signature verifier); it only parses hostile text into typed
//! credentials, so it is also what the fuzz target `credentials` drives.

use crate::error::ApiError;
use crate::http::extract::bearer_in;
use crate::ids::DeviceId;
use actix_web::http::header::HeaderMap;
use serde::Deserialize;

/// What a robot opening `/ws/device` presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotCredentials {
    /// `Authorization: Bearer <device token>` (checked before anything else).
    Token(String),
    /// `X-Device-Id`, `X-Timestamp`, `X-Signature` (all three), else the
    /// query's `device_id`, `timestamp`, `signature` (all three).
    Signature {
        device: DeviceId,
        timestamp: i64,
        signature: String,
    },
}

#[derive(Deserialize, Default)]
struct RobotQuery {
    device_id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize, Default)]
struct AppQuery {
    token: Option<String>,
    device_id: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A robot's credentials; `Unauthorized` when it presented none, or a
/// device id or timestamp that does not parse. A query string that does not
/// parse counts as no query.
pub fn robot_credentials(headers: &HeaderMap, query: &str) -> Result<RobotCredentials, ApiError> {
    if let Some(token) = bearer_in(headers) {
        return Ok(RobotCredentials::Token(token.to_string()));
    }
    let query = web_query::<RobotQuery>(query);
    let (id, ts, sig) = match (
        header(headers, "x-device-id"),
        header(headers, "x-timestamp"),
        header(headers, "x-signature"),
    ) {
        (Some(i), Some(t), Some(s)) => (i.to_string(), t.to_string(), s.to_string()),
        _ => match (query.device_id, query.timestamp, query.signature) {
            (Some(i), Some(t), Some(s)) => (i, t, s),
            _ => return Err(ApiError::Unauthorized),
        },
    };
    let device = DeviceId::parse(&id).map_err(|_| ApiError::Unauthorized)?;
    let timestamp: i64 = ts.trim().parse().map_err(|_| ApiError::Unauthorized)?;
    Ok(RobotCredentials::Signature {
        device,
        timestamp,
        signature: sig,
    })
}

/// What an app opening `/ws/app` presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredentials {
    /// The bearer token, else the query's `token`.
    pub token: String,
    /// The query's `device_id`, unparsed: it is read only once the token is
    /// accepted (an unauthenticated caller learns nothing but 401).
    device_id: Option<String>,
}

impl AppCredentials {
    /// The device the app asked to join first, if any (`BadRequest` when
    /// it is not a device id).
    pub fn initial_device(&self) -> Result<Option<DeviceId>, ApiError> {
        self.device_id
            .as_deref()
            .map(|d| {
                DeviceId::parse(d).map_err(|e| ApiError::BadRequest(format!("device_id: {e}")))
            })
            .transpose()
    }
}

/// An app's credentials; `Unauthorized` when it presented no token.
pub fn app_credentials(headers: &HeaderMap, query: &str) -> Result<AppCredentials, ApiError> {
    let query = web_query::<AppQuery>(query);
    let token = bearer_in(headers)
        .map(String::from)
        .or(query.token)
        .ok_or(ApiError::Unauthorized)?;
    Ok(AppCredentials {
        token,
        device_id: query.device_id,
    })
}

/// The query parsed as actix's `web::Query` does, or all-absent.
fn web_query<T: serde::de::DeserializeOwned + Default>(query: &str) -> T {
    actix_web::web::Query::<T>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn signature(device: &str, timestamp: i64, signature: &str) -> RobotCredentials {
        RobotCredentials::Signature {
            device: DeviceId::parse(device).unwrap(),
            timestamp,
            signature: signature.into(),
        }
    }

    #[test]
    fn robot_token_then_headers_then_query_never_mixed() {
        let q = "device_id=q-dev&timestamp=2&signature=bb";
        let all = [
            ("authorization", "Bearer tok"),
            ("x-device-id", "h-dev"),
            ("x-timestamp", " 1 "),
            ("x-signature", "aa"),
        ];
        assert_eq!(
            robot_credentials(&headers(&all), q).unwrap(),
            RobotCredentials::Token("tok".into())
        );
        assert_eq!(
            robot_credentials(&headers(&all[1..]), q).unwrap(),
            signature("h-dev", 1, "aa")
        );
        // Two of three headers: the query is used whole, not completed.
        assert_eq!(
            robot_credentials(&headers(&all[1..3]), q).unwrap(),
            signature("q-dev", 2, "bb")
        );
        for bad in [
            "device_id=q-dev&timestamp=2",
            "device_id=q-dev&device_id=x&timestamp=2&signature=bb",
            "device_id=../x&timestamp=2&signature=bb",
            "device_id=q-dev&timestamp=2.5&signature=bb",
        ] {
            assert!(matches!(
                robot_credentials(&headers(&all[1..3]), bad),
                Err(ApiError::Unauthorized)
            ));
        }
    }

    #[test]
    fn app_token_from_bearer_or_query_device_read_later() {
        let c = app_credentials(&headers(&[("authorization", "Bearer b")]), "token=q").unwrap();
        assert_eq!(c.token, "b");
        let c = app_credentials(&HeaderMap::new(), "token=q&device_id=..%2Fx").unwrap();
        assert_eq!(c.token, "q");
        assert!(matches!(c.initial_device(), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            app_credentials(&HeaderMap::new(), "device_id=d"),
            Err(ApiError::Unauthorized)
        ));
    }
}
