//! Errors at the two boundaries: [`ApiError`] for HTTP (status + code +
//! message, PROTOCOL.md §1) and [`WireCode`] for socket `error` frames (§3).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An HTTP error: `{"error":{"code","message"}}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid or expired token")]
    Unauthorized,
    /// Login or device signature refused: same answer whatever was wrong.
    #[error("{0}")]
    BadCredentials(&'static str),
    /// A cap or throttle (`crate::caps`): its own code, status and `Retry-After`.
    #[error("{}", .0.reason.message())]
    Refused(crate::caps::Refusal),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many requests")]
    TooManyRequests,
    #[error("{0}")]
    Unavailable(String),
    /// The store could not be had in time (contention); counted as
    /// `store_busy` by the request middleware.
    #[error("store busy; retry shortly")]
    StoreBusy,
    #[error("{0}")]
    GatewayTimeout(String),
    /// Anything unexpected: logged with its chain, answered as a bare 500.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized | ApiError::BadCredentials(_) => "unauthorized",
            ApiError::Refused(r) => r.reason.code(),
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::TooManyRequests => "rate_limited",
            ApiError::Unavailable(_) | ApiError::StoreBusy => "unavailable",
            ApiError::GatewayTimeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict => ApiError::Conflict("already exists".into()),
            crate::store::StoreError::Busy => ApiError::StoreBusy,
            crate::store::StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}
#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadCredentials(_) => StatusCode::UNAUTHORIZED,
            ApiError::Refused(r) => r.reason.status(),
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::StoreBusy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Refused(crate::caps::Refusal {
            retry_after_s: Some(s),
            ..
        }) = self
        {
            response.insert_header(("retry-after", s.to_string()));
        }
        response.json(Body {
            error: Inner {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

/// The `code` of a socket `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireCode {
    BadMessage,
    Unsupported,
    UnknownDevice,
    NotOwner,
    RobotOffline,
    UnknownSession,
    SessionLimit,
    RateLimited,
    NotSubscribed,
    Internal,
    /// `caps.app_sockets_per_device` reached (PROTOCOL.md Part 2 J).
    WatcherLimit,
}

/// A socket error to send back: code, message and the offending message's `id`.
#[derive(Debug, Clone)]
pub struct WireError {
    pub code: WireCode,
    pub message: String,
    pub reference: Option<Box<serde_json::value::RawValue>>,
}

impl WireError {
    pub fn new(code: WireCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// `robot_offline` "the robot is offline": the device's robot cannot be
    /// reached (not connected, or its instance is gone).
    pub fn robot_offline() -> Self {
        WireError::new(WireCode::RobotOffline, "the robot is offline")
    }

    pub fn with_ref(mut self, reference: Option<Box<serde_json::value::RawValue>>) -> Self {
        self.reference = reference;
        self
    }

    /// The `{"type":"error",...}` frame.
    pub fn to_frame(&self) -> String {
        #[derive(Serialize)]
        struct Frame<'a> {
            #[serde(rename = "type")]
            ty: &'static str,
            code: WireCode,
            message: &'a str,
            #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
            reference: Option<&'a serde_json::value::RawValue>,
        }
        serde_json::to_string(&Frame {
            ty: "error",
            code: self.code,
            message: &self.message,
            reference: self.reference.as_deref(),
        })
        .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"error"}"#.into())
    }
}
