//! The optional Redis connection (cluster mode): a shared, reconnecting connection manager
//! with short timeouts. Callers treat Redis as a cache tier: a Redis failure is logged and the
//! caller falls back to the database, never failing a request.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A shared Redis connection.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redis")
    }
}

impl Redis {
    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(2);
        Ok(Self { conn: client.get_connection_manager_with_config(config).await? })
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> redis::RedisResult<Option<String>> {
        redis::cmd("GET").arg(key).query_async(&mut self.conn.clone()).await
    }

    /// `EVAL script` with `keys` and integer `args`, returning an integer.
    pub async fn eval(&self, script: &str, keys: &[&str], args: &[u64]) -> redis::RedisResult<u64> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len());
        for key in keys {
            cmd.arg(*key);
        }
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut self.conn.clone()).await
    }

    /// `SET key value EX ttl`.
    pub async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut self.conn.clone())
            .await
    }
}
