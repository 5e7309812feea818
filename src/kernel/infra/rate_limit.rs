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
    /// Queries per device (or user, or IP).
    QueryPerClient,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login_ip",
            Self::LoginPerAccount => "login_account",
            Self::RefreshPerDevice => "refresh_device",
            Self::MutationPerUser => "mutation_user",
            Self::QueryPerClient => "query_client",
        }
    }

    const ALL: [Limit; 5] =
        [Self::LoginPerIp, Self::LoginPerAccount, Self::RefreshPerDevice, Self::MutationPerUser, Self::QueryPerClient];
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
    /// Queries per device/user/IP.
    pub query_client: Budget,
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

const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
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
        if !self.settings.enabled {
            return Ok(());
        }
        if let Some(redis) = &self.redis {
            match self.check_shared(redis, limit, key).await {
                Ok(outcome) => return outcome,
                Err(err) => tracing::warn!(error = %err, "redis rate limit failed; using the local budget"),
            }
        }
        let Some(limiter) = self.local.get(&limit) else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(DefaultClock::default().now())))
    }

    async fn check_shared(&self, redis: &Redis, limit: Limit, key: &str) -> redis::RedisResult<Result<(), RetryAfter>> {
        let budget = self.settings.budget(limit);
        let emission_ms = 60_000 / u64::from(budget.per_minute.max(1));
        let redis_key = format!("bff:rl:{}:{key}", limit.name());
        let wait_ms: u64 =
            redis.eval(GCRA_SCRIPT, &[redis_key.as_str()], &[emission_ms, u64::from(budget.burst.max(1))]).await?;
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
}
