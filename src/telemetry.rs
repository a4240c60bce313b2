//! Logging: `tracing` with a request id per HTTP request. Only the path is
//! logged, never the query string (apps may carry `?token=` there) and never
//! headers (bearer tokens, signatures).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// glibc keeps freed large blocks in per-thread arenas once its dynamic
/// mmap threshold has grown: argon2's 19 MiB working memory, allocated on
/// whichever blocking thread hashes a password, then stays resident for
/// good (measured: +16 MiB RSS per login, never returned). A fixed 1 MiB
/// threshold makes such blocks `mmap`ed and returned to the OS on free.
/// The relay binary now allocates through jemalloc (`main.rs`), which
/// returns such blocks itself (`logins_do_not_leave_memory_behind` holds
/// with it); this still covers C code that calls glibc's malloc (SQLite)
/// and builds of the library without the jemalloc global allocator.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called first thing in
    // main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Replaces Rust's default panic report (which prints the panic's message,
/// and a formatted message can quote a frame, a header or a token) with one
/// line: thread, location, and the message only if it is a literal in the
/// code. Set `RUST_BACKTRACE=1` for a backtrace (code addresses, no data).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown location".into());
        let message = crate::supervise::panic_message(info.payload());
        eprintln!(
            "wimz-relay: thread '{}' panicked at {location}: {message}",
            thread.name().unwrap_or("<unnamed>")
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

/// Installs the global subscriber once (later calls are ignored, for tests).
pub fn init(level: &str, format: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Middleware: a span with `request_id`, method and path; one line per
/// response with status and latency; `x-request-id` on the response.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let _enter = span.enter();
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            let busy = res
                .response()
                .error()
                .and_then(|e| e.as_error::<crate::error::ApiError>())
                .is_some_and(|e| matches!(e, crate::error::ApiError::StoreBusy));
            if busy {
                if let Some(state) = res
                    .request()
                    .app_data::<actix_web::web::Data<crate::state::AppState>>()
                {
                    crate::metrics::inc(&state.metrics.store_busy);
                }
            }
            tracing::info!(
                status,
                latency_ms = started.elapsed().as_millis() as u64,
                "request"
            );
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                res.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), v);
            }
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(error = %e, "request failed");
            Err(e)
        }
    }
}
