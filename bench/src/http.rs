//! A minimal HTTP/1.1 client over hyper for loopback servers: request descriptions shared by
//! the load generator, keep-alive connections, and one-shot requests for readiness checks,
//! `/metrics` and response verification.
//!
//! No `Accept-Encoding` is ever sent, so neither the product nor the baseline compresses.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    client::conn::http1::SendRequest,
    header::{HeaderName, HeaderValue},
};
use hyper_util::rt::TokioIo;

/// Longest a single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request, sent again and again by the load generator.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// `GET` or `POST`.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Extra headers (`Host` is added from the address).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body (empty for GET).
    pub body: Bytes,
}

impl RequestSpec {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self { method: Method::GET, path: path.to_owned(), headers: Vec::new(), body: Bytes::new() }
    }

    /// `POST path` with a JSON body, `Accept: application/json` and optionally a bearer token.
    pub fn post_json(path: &str, body: &serde_json::Value, bearer: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = vec![
            (hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (hyper::header::ACCEPT, HeaderValue::from_static("application/json")),
        ];
        if let Some(token) = bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header value")?;
            headers.push((hyper::header::AUTHORIZATION, value));
        }
        Ok(Self { method: Method::POST, path: path.to_owned(), headers, body: Bytes::from(serde_json::to_vec(body)?) })
    }

    /// The same request to another path (the baseline's route for the same screen).
    pub fn with_path(&self, path: &str) -> Self {
        Self { path: path.to_owned(), ..self.clone() }
    }

    /// A hyper request with `Host: host` (the body is reference-counted, not copied).
    pub fn to_request(&self, host: &HeaderValue) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder().method(self.method.clone()).uri(self.path.as_str());
        builder = builder.header(hyper::header::HOST, host);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(Full::new(self.body.clone()))?)
    }
}

/// An open keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to a loopback address (Nagle off) and starts the connection driver task.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(addr.ip().is_loopback(), "refusing to connect to non-loopback {addr}");
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors show up on the next request.
            let _ = driver.await;
        });
        Ok(Self { sender })
    }

    /// Waits until the connection can take a request; false when it was closed.
    pub async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends one request and reads the whole response body.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let exchange = async {
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.context("request timed out")?
    }
}

/// The `Host` header value for a server address.
pub fn host_header(addr: SocketAddr) -> anyhow::Result<HeaderValue> {
    Ok(HeaderValue::from_str(&addr.to_string())?)
}

/// Sends one request on a fresh connection.
pub async fn send_once(addr: SocketAddr, spec: &RequestSpec) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut connection = Connection::open(addr).await?;
    connection.send(spec.to_request(&host_header(addr)?)?).await
}

/// Sends one request on a fresh connection; returns status, headers and raw (undecoded) body.
pub async fn exchange_once(
    addr: SocketAddr,
    spec: &RequestSpec,
) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
    let mut connection = Connection::open(addr).await?;
    let request = spec.to_request(&host_header(addr)?)?;
    let exchange = async {
        let response = connection.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        anyhow::Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.context("request timed out")?
}

/// Sends one request that must answer 200 with a JSON body; returns the parsed body.
pub async fn json_once(addr: SocketAddr, spec: &RequestSpec) -> anyhow::Result<(serde_json::Value, Bytes)> {
    let (status, body) = send_once(addr, spec).await?;
    anyhow::ensure!(status == StatusCode::OK, "{} {} answered {status}: {}", spec.method, spec.path, preview(&body));
    let value =
        serde_json::from_slice(&body).with_context(|| format!("{} is not JSON: {}", spec.path, preview(&body)))?;
    Ok((value, body))
}

/// The start of a body, for error messages.
pub fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}
