//! The HTTP boundary's error: [`ApiError`] (status + code + message,
//! PROTOCOL.md §1). Socket `error` frames are [`crate::wire::WireError`].

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

impl From<crate::caps::Refusal> for ApiError {
    fn from(r: crate::caps::Refusal) -> Self {
        ApiError::Refused(r)
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
