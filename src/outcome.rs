//! How an intercepted request ended: one value names the log line's `outcome=` and the Envoy
//! counter that moves, so the two can never disagree.

/// Every way an intercepted request can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Method other than POST (405).
    RejectedMethod,
    /// Missing or unsupported Content-Type or charset (415).
    RejectedMediaType,
    /// Body larger than `limits.max_body_bytes` (413).
    RejectedTooLarge,
    /// Body that is not a JSON object / form, or breaks a field rule (400).
    RejectedInvalid,
    /// Not a database connection (400 `bad.connection`).
    RejectedConnection,
    /// Client id not allowed (403).
    RejectedClient,
    /// Over a rate limit, answered 429.
    RateLimited,
    /// Over a rate limit, answered with the silent success reply.
    RateLimitedSilent,
    /// Provider answered 2xx (relayed).
    Provider2xx,
    /// Provider answered 4xx (relayed).
    Provider4xx,
    /// Provider answered 5xx (mapped to 502/503/504).
    Provider5xx,
    /// Provider did not answer within `provider.timeout_ms` (504).
    ProviderTimeout,
    /// Provider could not be reached or the exchange failed (503).
    ProviderUnreachable,
    /// Envoy refused the callout itself, e.g. an unknown cluster (503).
    DispatchFailed,
    /// Envoy never delivered the body: `allow_on_headers_stop_iteration` is missing (500).
    Misconfigured,
}

impl Outcome {
    pub const ALL: [Outcome; 15] = [
        Outcome::RejectedMethod,
        Outcome::RejectedMediaType,
        Outcome::RejectedTooLarge,
        Outcome::RejectedInvalid,
        Outcome::RejectedConnection,
        Outcome::RejectedClient,
        Outcome::RateLimited,
        Outcome::RateLimitedSilent,
        Outcome::Provider2xx,
        Outcome::Provider4xx,
        Outcome::Provider5xx,
        Outcome::ProviderTimeout,
        Outcome::ProviderUnreachable,
        Outcome::DispatchFailed,
        Outcome::Misconfigured,
    ];

    /// The name used in the log line and (after the stat prefix) in Envoy's stats.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::RejectedMethod => "rejected.method",
            Outcome::RejectedMediaType => "rejected.media_type",
            Outcome::RejectedTooLarge => "rejected.too_large",
            Outcome::RejectedInvalid => "rejected.invalid",
            Outcome::RejectedConnection => "rejected.connection",
            Outcome::RejectedClient => "rejected.client",
            Outcome::RateLimited => "rate_limited.rejected",
            Outcome::RateLimitedSilent => "rate_limited.silent",
            Outcome::Provider2xx => "provider.2xx",
            Outcome::Provider4xx => "provider.4xx",
            Outcome::Provider5xx => "provider.5xx",
            Outcome::ProviderTimeout => "provider.timeout",
            Outcome::ProviderUnreachable => "provider.unreachable",
            Outcome::DispatchFailed => "provider.dispatch_failed",
            Outcome::Misconfigured => "misconfigured",
        }
    }

    /// The position in `ALL` (the declaration order; a unit test keeps the two in step).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexes_round_trip() {
        let mut names: Vec<_> = Outcome::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }
}
