//! Rate limits: GCRA budgets per key (IP, device, user, account) and operation class.
//!
//! In the embedded mode each budget lives in process (governor's keyed GCRA). With Redis
//! configured, every replica enforces one shared budget: the same GCRA runs as a Lua script
//! against a per-key "theoretical arrival time" in Redis, using Redis's clock. If Redis fails
//! the limiter falls back to the in-process budget rather than letting traffic through
//! unlimited or refusing everything.

use std::{collections::HashMap, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use serde::{Deserialize, Serialize};

use crate::kernel::infra::redis::Redis;

/// A budget: `per_minute` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed back to back.
    pub burst: u32,
}

/// What a budget is spent on, and per what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `login`/`register` attempts per client IP.
    LoginPerIp,
    /// `login` attempts per account (email): slows brute force on one account from many IPs.
    LoginPerAccount,
    /// `refreshTokens` per device (or IP when the client sends no device id).
    RefreshPerDevice,
    /// Other mutations per user (or IP when anonymous).
    MutationPerUser,
    /// Queries per client: the user (or the IP when anonymous), and the token's own device.
    QueryPerClient,
    /// Queries per client IP, whoever is signed in (larger: many phones share a carrier NAT).
    QueryPerIp,
    /// Mutations (refresh included) per client IP, whoever is signed in.
    MutationPerIp,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login_ip",
            Self::LoginPerAccount => "login_account",
            Self::RefreshPerDevice => "refresh_device",
            Self::MutationPerUser => "mutation_user",
            Self::QueryPerClient => "query_client",
            Self::QueryPerIp => "query_ip",
            Self::MutationPerIp => "mutation_ip",
        }
    }

    const ALL: [Limit; 7] = [
        Self::LoginPerIp,
        Self::LoginPerAccount,
        Self::RefreshPerDevice,
        Self::MutationPerUser,
        Self::QueryPerClient,
        Self::QueryPerIp,
        Self::MutationPerIp,
    ];
}

/// Configured budgets.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Turn every limit off (benchmarks, trusted internal traffic).
    pub enabled: bool,
    /// `login`/`register` per IP.
    pub login_ip: Budget,
    /// `login` per account.
    pub login_account: Budget,
    /// `refreshTokens` per device.
    pub refresh_device: Budget,
    /// Mutations per user.
    pub mutation_user: Budget,
    /// Queries per user (IP when anonymous) and per the token's device.
    pub query_client: Budget,
    /// Queries per client IP (always spent, signed in or not).
    pub query_ip: Budget,
    /// Mutations per client IP (always spent, signed in or not).
    pub mutation_ip: Budget,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            login_ip: Budget { per_minute: 20, burst: 10 },
            login_account: Budget { per_minute: 6, burst: 5 },
            refresh_device: Budget { per_minute: 30, burst: 10 },
            mutation_user: Budget { per_minute: 120, burst: 30 },
            query_client: Budget { per_minute: 1200, burst: 200 },
            query_ip: Budget { per_minute: 6000, burst: 1000 },
            mutation_ip: Budget { per_minute: 600, burst: 150 },
        }
    }
}

impl RateLimitSettings {
    fn budget(&self, limit: Limit) -> Budget {
        match limit {
            Limit::LoginPerIp => self.login_ip,
            Limit::LoginPerAccount => self.login_account,
            Limit::RefreshPerDevice => self.refresh_device,
            Limit::MutationPerUser => self.mutation_user,
            Limit::QueryPerClient => self.query_client,
            Limit::QueryPerIp => self.query_ip,
            Limit::MutationPerIp => self.mutation_ip,
        }
    }
}

/// Refused: try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, at least 1 (for `Retry-After` and `retryAfterSeconds`).
    pub fn seconds(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// GCRA over every key at once (`ARGV` holds `emission_ms, burst` per key): when any key is
/// over its budget nothing is spent and the longest wait is returned, else every key spends.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local emission = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + emission
  local allow_at = new_tat - emission * burst
  if allow_at - now > wait then wait = allow_at - now end
  tats[i] = new_tat
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil(tats[i] - now) + 1000)
end
return 0
";

/// Every rate limit of one server.
pub struct RateLimiter {
    settings: RateLimitSettings,
    local: HashMap<Limit, DefaultKeyedRateLimiter<String>>,
    redis: Option<Redis>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("shared", &self.redis.is_some()).finish_non_exhaustive()
    }
}

fn quota(budget: Budget) -> Quota {
    let burst = NonZeroU32::new(budget.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let per_minute = budget.per_minute.max(1);
    Quota::with_period(Duration::from_secs(60) / per_minute).map_or(Quota::per_minute(burst), |q| q.allow_burst(burst))
}

impl RateLimiter {
    /// Limits from `settings`, shared through `redis` when given.
    pub fn new(settings: RateLimitSettings, redis: Option<Redis>) -> Self {
        let local =
            Limit::ALL.iter().map(|l| (*l, DefaultKeyedRateLimiter::keyed(quota(settings.budget(*l))))).collect();
        Self { settings, local, redis }
    }

    /// Spends one unit of `limit` for `key`; `Err` says how long to wait.
    pub async fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        self.check_all(&[(limit, key.to_owned())]).await
    }

    /// Spends one unit of every `(limit, key)`: refused when any of them is over budget.
    /// Through Redis the check is atomic (a refusal spends nothing); the in-process budgets
    /// are checked in order and the first refusal stops (the budgets before it are spent).
    pub async fn check_all(&self, keys: &[(Limit, String)]) -> Result<(), RetryAfter> {
        if !self.settings.enabled || keys.is_empty() {
            return Ok(());
        }
        if let Some(redis) = &self.redis {
            match self.check_shared(redis, keys).await {
                Ok(outcome) => return outcome,
                Err(err) => tracing::warn!(error = %err, "redis rate limit failed; using the local budget"),
            }
        }
        for (limit, key) in keys {
            if let Some(limiter) = self.local.get(limit) {
                limiter
                    .check_key(key)
                    .map_err(|not_until| RetryAfter(not_until.wait_time_from(DefaultClock::default().now())))?;
            }
        }
        Ok(())
    }

    async fn check_shared(
        &self,
        redis: &Redis,
        keys: &[(Limit, String)],
    ) -> redis::RedisResult<Result<(), RetryAfter>> {
        let redis_keys: Vec<String> =
            keys.iter().map(|(limit, key)| format!("bff:rl:{}:{key}", limit.name())).collect();
        let names: Vec<&str> = redis_keys.iter().map(String::as_str).collect();
        let args: Vec<u64> = keys
            .iter()
            .flat_map(|(limit, _)| {
                let budget = self.settings.budget(*limit);
                [60_000 / u64::from(budget.per_minute.max(1)), u64::from(budget.burst.max(1))]
            })
            .collect();
        let wait_ms: u64 = redis.eval(GCRA_SCRIPT, &names, &args).await?;
        Ok(if wait_ms == 0 { Ok(()) } else { Err(RetryAfter(Duration::from_millis(wait_ms))) })
    }

    /// Drops idle keys (called periodically).
    pub fn shrink(&self) {
        for limiter in self.local.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_refusal_with_a_wait() {
        let settings = RateLimitSettings { login_ip: Budget { per_minute: 60, burst: 3 }, ..Default::default() };
        let limiter = RateLimiter::new(settings, None);
        for _ in 0..3 {
            assert!(limiter.check(Limit::LoginPerIp, "1.2.3.4").await.is_ok());
        }
        let refused = limiter.check(Limit::LoginPerIp, "1.2.3.4").await.expect_err("over budget");
        assert!(refused.0 <= Duration::from_secs(1) && refused.seconds() == 1, "{refused:?}");
        assert!(limiter.check(Limit::LoginPerIp, "5.6.7.8").await.is_ok(), "budgets are per key");
        assert!(limiter.check(Limit::QueryPerClient, "1.2.3.4").await.is_ok(), "and per limit");
    }

    #[tokio::test]
    async fn several_keys_are_refused_when_any_is_over_budget() {
        let settings = RateLimitSettings {
            query_client: Budget { per_minute: 60, burst: 100 },
            query_ip: Budget { per_minute: 60, burst: 2 },
            ..Default::default()
        };
        let limiter = RateLimiter::new(settings, None);
        let keys = |user: &str| vec![(Limit::QueryPerIp, "ip".to_owned()), (Limit::QueryPerClient, user.to_owned())];
        assert!(limiter.check_all(&keys("u1")).await.is_ok());
        assert!(limiter.check_all(&keys("u2")).await.is_ok());
        assert!(limiter.check_all(&keys("u3")).await.is_err(), "a fresh user key does not escape the IP budget");
    }
}
