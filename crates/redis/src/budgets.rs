//! Budgets on Redis (spec §15.1).

use std::sync::Arc;

use captix::budget::{BudgetKey, BudgetStore, PreparedSpend, Spend};
use captix::Denial;

use crate::{Conn, Options};

/// The GCRA of spec §10.3 over every budget of one call, all or nothing. Redis's Lua numbers
/// are doubles: exact for integers below 2^53, which `prepare` guarantees for every operand.
/// KEYS: the budgets. ARGV: now, then per budget max_calls, window, ttl (seconds).
/// Returns {0} when spent, {1, position, retry_after or -1} when a budget is exhausted.
const SPEND: &str = r"
local now = tonumber(ARGV[1])
local new = {}
for i = 1, #KEYS do
  local max = tonumber(ARGV[(i - 1) * 3 + 2])
  local window = tonumber(ARGV[(i - 1) * 3 + 3])
  local state = tonumber(redis.call('GET', KEYS[i]) or '0')
  if max == 0 then
    return {1, i - 1, -1}
  elseif window == 0 then
    if state >= max then return {1, i - 1, -1} end
    new[i] = state + 1
  else
    local n = now * max
    local t = math.max(state, n) + window
    if t - n > window * max then
      return {1, i - 1, math.ceil((t - n - window * max) / max)}
    end
    new[i] = t
  end
end
for i = 1, #KEYS do
  local ttl = tonumber(ARGV[(i - 1) * 3 + 4])
  redis.call('SET', KEYS[i], string.format('%.0f', new[i]), 'EX', ttl)
end
return {0}
";

/// Largest value a budget operand may reach in the Lua script (doubles are exact below 2^53).
const EXACT: u128 = 1 << 53;
/// Lifetime budgets of tickets without expiry are kept this long (400 days).
const LIFETIME_TTL: u64 = 400 * 86_400;

/// Budgets counted in Redis: every replica spends from the same counters.
pub struct RedisBudgets {
    conn: Arc<Conn>,
    prefix: String,
    script: Arc<redis::Script>,
}

impl RedisBudgets {
    /// A store on the Redis at `url` (`redis://127.0.0.1:6379`). Connects on first use.
    pub fn new(url: &str, options: Options) -> Result<Self, captix::Error> {
        Ok(RedisBudgets {
            conn: Arc::new(Conn::new(url, options.timeout)?),
            prefix: options.prefix,
            script: Arc::new(redis::Script::new(SPEND)),
        })
    }

    /// The Redis key of a budget: the hash tag is the chain's root id, so all of a chain's
    /// keys share one Redis Cluster slot and one script can touch them all.
    pub fn key(&self, k: &BudgetKey) -> String {
        let root = hex::encode(&k.root[..k.root.len().min(16)]);
        format!(
            "{}:{{{root}}}:b:{}:{}",
            self.prefix,
            hex::encode(&k.block),
            k.index
        )
    }
}

struct RedisSpend {
    conn: Arc<Conn>,
    script: Arc<redis::Script>,
    keys: Vec<String>,
    budgets: Vec<BudgetKey>,
    refused: Option<String>,
}

impl PreparedSpend for RedisSpend {
    fn spend(&self, now: u64) -> Result<Spend, Denial> {
        if let Some(why) = &self.refused {
            return Err(crate::unavailable(why));
        }
        let mut inv = self.script.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.arg(now);
        for b in &self.budgets {
            // A lifetime counter only counts to max_calls; a windowed budget's ticks reach
            // max_calls × (now + window) + window.
            let n = if b.window == 0 {
                u128::from(b.max_calls)
            } else {
                u128::from(b.max_calls) * u128::from(now.saturating_add(b.window))
                    + u128::from(b.window)
            };
            if n >= EXACT {
                return Err(crate::unavailable(format!(
                    "budget of {} calls per {}s is beyond the exact range of the Redis store",
                    b.max_calls, b.window
                )));
            }
            let ttl = if b.window == 0 {
                b.expires
                    .map(|e| e.saturating_sub(now).max(1))
                    .unwrap_or(LIFETIME_TTL)
            } else {
                // Until the budget would be full again: at most one window after the last spend.
                b.window + 1
            };
            inv.arg(b.max_calls).arg(b.window).arg(ttl);
        }
        let reply: Vec<i64> = self.conn.with(|c| inv.invoke(c))?;
        match reply.as_slice() {
            [0] => Ok(Spend::Spent),
            [1, which, wait] => Ok(Spend::Exhausted {
                which: usize::try_from(*which).unwrap_or(0),
                retry_after: u64::try_from(*wait).ok(),
            }),
            other => Err(crate::unavailable(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }
}

impl BudgetStore for RedisBudgets {
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        let names: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        // A chain's keys must share a slot: they do, by construction (one root per call).
        let refused = keys
            .windows(2)
            .any(|w| w[0].root != w[1].root)
            .then(|| "budgets of one call come from different chains".to_string());
        Box::new(RedisSpend {
            conn: self.conn.clone(),
            script: self.script.clone(),
            keys: names,
            budgets: keys,
            refused,
        })
    }
}
