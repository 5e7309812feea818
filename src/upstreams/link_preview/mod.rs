//! Link previews: the title, description, site name and image of a linked page, read from
//! its OpenGraph / Twitter card tags, fetched through the [`ssrf`] guard with capped
//! redirects, size and time, and only from HTML responses.

pub mod html;
pub mod ssrf;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use url::Url;

use crate::upstreams::{
    CallError, CallScope, EdgeCode, UpstreamFailure,
    cache::CacheableError,
    client::{Idempotency, UpstreamClient, classify},
};

/// A preview of a linked page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPreview {
    /// The URL the post links to.
    pub url: String,
    /// Title of the page.
    pub title: Option<String>,
    /// Description of the page.
    pub description: Option<String>,
    /// Name of the site (`og:site_name`, else the host name).
    pub site_name: Option<String>,
    /// Absolute URL of the preview image.
    pub image_url: Option<String>,
}

/// Why a page has no preview.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkPreviewError {
    /// The URL or an address it resolves or redirects to is refused by the SSRF guard.
    #[error("refused: {0}")]
    Refused(ssrf::Refusal),
    /// More redirects than allowed.
    #[error("too many redirects")]
    TooManyRedirects,
    /// Fetching failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl UpstreamFailure for LinkPreviewError {
    fn edge_code(&self) -> EdgeCode {
        match self {
            Self::Call(CallError::Timeout) => EdgeCode::Timeout,
            _ => EdgeCode::Unavailable,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Refused(ssrf::Refusal::Address) => "BLOCKED_ADDRESS",
            Self::Refused(ssrf::Refusal::Port) => "BLOCKED_PORT",
            Self::Refused(ssrf::Refusal::Scheme) => "BLOCKED_SCHEME",
            Self::Refused(ssrf::Refusal::Malformed) => "MALFORMED_URL",
            Self::TooManyRedirects => "TOO_MANY_REDIRECTS",
            Self::Call(err) => err.reason(),
        }
    }
}

impl CacheableError for LinkPreviewError {
    // A site that is down or slow is the site's problem, not ours: every failure is cached
    // for the negative TTL so that a feed does not hammer it on every screen.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Call(CallError::Cancelled))
    }

    fn cancelled() -> Self {
        Self::Call(CallError::Cancelled)
    }
}

/// Fetches previews of linked pages.
pub trait LinkPreviewer: Send + Sync {
    /// The preview of `url`, or `None` when the page has nothing to show (not HTML, no
    /// title and no image).
    fn preview(
        self: Arc<Self>,
        scope: CallScope,
        url: String,
    ) -> BoxFuture<'static, Result<Option<LinkPreview>, LinkPreviewError>>;
}

/// The real fetcher: reqwest with the SSRF guard.
#[derive(Debug)]
pub struct HttpLinkPreviewer {
    client: UpstreamClient,
    guard: ssrf::Guard,
    max_redirects: usize,
    max_bytes: usize,
    user_agent: String,
}

impl HttpLinkPreviewer {
    /// A fetcher with `settings`.
    pub fn new(
        settings: &super::LinkPreviewSettings,
        metrics: Arc<crate::kernel::infra::metrics::Metrics>,
    ) -> Result<Self, super::BuildError> {
        let allow = ssrf::Allowlist::parse(&settings.allow_hosts).map_err(super::BuildError::Allowlist)?;
        let guard = ssrf::Guard::new(allow, settings.allowed_ports.clone());
        let resolver = guard.resolver();
        let client = UpstreamClient::new("link_previews", settings.policy(), metrics, |builder| {
            builder.dns_resolver(resolver).redirect(reqwest::redirect::Policy::none()).no_proxy()
        })?;
        Ok(Self {
            client,
            guard,
            max_redirects: settings.max_redirects,
            max_bytes: settings.max_bytes,
            user_agent: settings.user_agent.clone(),
        })
    }

    async fn fetch(&self, scope: &CallScope, link: &str) -> Result<Option<LinkPreview>, LinkPreviewError> {
        let mut url = Url::parse(link).map_err(|_| LinkPreviewError::Refused(ssrf::Refusal::Malformed))?;
        let mut redirects = 0;
        let response = loop {
            self.guard.check_url(&url).map_err(LinkPreviewError::Refused)?;
            let response = self
                .client
                .send(scope, Idempotency::Idempotent, |http| {
                    http.get(url.clone())
                        .header(reqwest::header::USER_AGENT, &self.user_agent)
                        .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml;q=0.9")
                })
                .await
                .map_err(|err| match err {
                    CallError::Refused => LinkPreviewError::Refused(ssrf::Refusal::Address),
                    other => LinkPreviewError::Call(other),
                })?;
            if !response.status().is_redirection() {
                break response;
            }
            redirects += 1;
            if redirects > self.max_redirects {
                return Err(LinkPreviewError::TooManyRedirects);
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| CallError::InvalidResponse("redirect without Location".into()))?;
            url = url.join(location).map_err(|_| LinkPreviewError::Refused(ssrf::Refusal::Malformed))?;
        };
        if !is_html(&response) {
            return Ok(None);
        }
        let final_url = response.url().clone();
        let body = self.read_head(response).await?;
        let meta = html::extract(&body, &final_url);
        if meta.title.is_none() && meta.image_url.is_none() {
            return Ok(None);
        }
        let site_name =
            meta.site_name.or_else(|| final_url.host_str().map(|h| h.trim_start_matches("www.").to_owned()));
        Ok(Some(LinkPreview {
            url: link.to_owned(),
            title: meta.title,
            description: meta.description,
            site_name,
            image_url: meta.image_url,
        }))
    }

    /// Reads at most `max_bytes` (a page's `<head>` comes first; the rest is not needed).
    async fn read_head(&self, mut response: reqwest::Response) -> Result<Vec<u8>, LinkPreviewError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            let start = body.len().saturating_sub(HEAD_END.len() - 1);
            let room = self.max_bytes - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= self.max_bytes
                || body[start..].windows(HEAD_END.len()).any(|w| w.eq_ignore_ascii_case(HEAD_END))
            {
                break;
            }
        }
        Ok(body)
    }
}

const HEAD_END: &[u8] = b"</head>";

fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "text/html" || mime == "application/xhtml+xml")
}

impl LinkPreviewer for HttpLinkPreviewer {
    fn preview(
        self: Arc<Self>,
        scope: CallScope,
        url: String,
    ) -> BoxFuture<'static, Result<Option<LinkPreview>, LinkPreviewError>> {
        Box::pin(async move { self.fetch(&scope, &url).await })
    }
}

/// Previews switched off: every link has none.
#[derive(Debug)]
pub struct NoLinkPreviews;

impl LinkPreviewer for NoLinkPreviews {
    fn preview(
        self: Arc<Self>,
        _scope: CallScope,
        _url: String,
    ) -> BoxFuture<'static, Result<Option<LinkPreview>, LinkPreviewError>> {
        Box::pin(async { Ok(None) })
    }
}
