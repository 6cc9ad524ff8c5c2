//! [`RequestContext`]: what the adapter knows about the client making a request.

use std::net::IpAddr;

/// The client of one request, as determined by the HTTP adapter.
///
/// `ip` is the socket peer, or the right-most untrusted forwarded address when the peer is a
/// configured trusted proxy; the core never reads forwarding headers itself. It is recorded on
/// sessions and used for rate-limit keys and captcha `remoteip`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client's IP address, when known.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, truncated to 256 bytes.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// Longest user agent kept, in bytes.
    pub const MAX_USER_AGENT: usize = 256;

    /// A context with the given IP and user agent (truncated to [`Self::MAX_USER_AGENT`] bytes on a
    /// character boundary).
    #[must_use]
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(Self::MAX_USER_AGENT);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self { ip, user_agent }
    }
}
