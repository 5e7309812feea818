//! W3C Trace Context: the `traceparent` a screen request arrives with (or a new one) and the
//! child `traceparent` sent with each upstream call, so one trace follows a screen through
//! every service it touches.

use std::fmt::Write as _;

/// The trace a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    sampled: bool,
}

impl TraceContext {
    /// The caller's trace from a `traceparent` header, or a new trace when it is missing or
    /// malformed (as the specification asks).
    pub fn from_header(value: Option<&str>) -> Self {
        value.and_then(Self::parse).unwrap_or_else(Self::new_root)
    }

    /// A new trace with a random id.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        fill_random(&mut trace_id);
        Self { trace_id, sampled: false }
    }

    /// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. Future versions are
    /// read by the same prefix; version `ff`, all-zero ids and wrong lengths are rejected.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && (parts.next().is_some() || value.len() != 55) {
            return None;
        }
        if trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
            return None;
        }
        if ![trace, parent, flags].iter().all(|part| is_lower_hex(part)) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&trace[2 * i..2 * i + 2], 16).ok()?;
        }
        if trace_id == [0; 16] || parent.bytes().all(|b| b == b'0') {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self { trace_id, sampled: flags & 1 == 1 })
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// A `traceparent` for an outgoing call: this trace, a fresh span id, the same flags.
    pub fn child_header(&self) -> String {
        let mut span = [0u8; 8];
        fill_random(&mut span);
        if span == [0; 8] {
            span[7] = 1;
        }
        format!("00-{}-{}-{:02x}", self.trace_id(), hex(&span), u8::from(self.sampled))
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn fill_random(buf: &mut [u8]) {
    // Trace ids need uniqueness, not secrecy: the thread-local generator (seeded from the OS)
    // avoids a system call per request.
    rand::Rng::fill(&mut rand::rng(), buf);
    if buf.iter().all(|b| *b == 0) {
        buf[0] = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn keeps_the_callers_trace_and_makes_child_spans() {
        let trace = TraceContext::from_header(Some(VALID));
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = trace.child_header();
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{child}");
        assert!(child.ends_with("-01"));
        assert_ne!(child, VALID, "a child has its own span id");
        assert!(TraceContext::parse(&child).is_some());
    }

    #[test]
    fn rejects_malformed_headers_and_starts_a_new_trace() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "not a header",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        let fresh = TraceContext::from_header(Some("garbage"));
        assert_eq!(fresh.trace_id().len(), 32);
        assert_ne!(fresh.trace_id(), TraceContext::from_header(None).trace_id());
    }
}
