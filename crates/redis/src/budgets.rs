//! Budgets on Redis (docs §15.1).

use std::sync::Arc;

use captix::budget::{BudgetKey, BudgetStore, PreparedSpend, Spend};
use captix::Denial;

use crate::{Conn, Options};

/// The GCRA of docs §10.3 over every budget of one call, all or nothing, in the same debt
/// form as the in-memory store. Redis's Lua numbers are doubles, exact below 2^53, and every
/// number here stays below `(window + 1) × (max_calls + 1)`, which the budget limit (spec §4.5)
/// keeps under 2^53. A value is `debt:at`; a plain number is the version 1 form (the absolute
/// GCRA time in ticks, or a lifetime count) and is read as the same debt.
/// A key's lifetime is only ever extended: a new key gets its TTL, an existing one keeps its
/// TTL unless the new one is later (`EXPIRE ... GT`, Redis 7.0 or later); TTL 0 keeps a key
/// for good.
/// KEYS: the budgets, then their lease hashes (§15.4). ARGV: now, then per budget max_calls,
/// window, ttl (seconds). Returns {0} when spent, {1, position, retry_after or -1} when a
/// budget is exhausted, {2, position} when a budget is leased by a replica that leases (a
/// spend that does not see leases could overspend: fail closed).
const SPEND: &str = r"
local now = tonumber(ARGV[1])
local n = #KEYS / 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[n + i]) == 1 then return {2, i - 1} end
end
local new = {}
local existed = {}
for i = 1, n do
  local max = tonumber(ARGV[(i - 1) * 3 + 2])
  local window = tonumber(ARGV[(i - 1) * 3 + 3])
  local raw = redis.call('GET', KEYS[i])
  existed[i] = raw
  local debt, at = 0, 0
  if raw then
    local d, a = string.match(raw, '^(%d+):(%d+)$')
    if d then
      debt = tonumber(d)
      at = tonumber(a)
    else
      -- version 1: its TTL followed the presenting chain (maybe a short-lived child's), so
      -- the key is rewritten now, refused or not, in the new form with this budget's own
      -- TTL, which is never shorter
      existed[i] = false
      local tat = tonumber(raw) or 0
      if window == 0 or max == 0 then
        debt = tat
      else
        at = math.max(math.floor(tat / max) - window, 0)
        debt = tat - at * max
      end
      local ttl = tonumber(ARGV[(i - 1) * 3 + 4])
      local value = string.format('%.0f:%.0f', debt, at)
      if ttl > 0 then
        redis.call('SET', KEYS[i], value, 'EX', ttl)
      else
        redis.call('SET', KEYS[i], value)
      end
    end
  end
  if max == 0 then
    return {1, i - 1, -1}
  elseif window == 0 then
    if debt >= max then return {1, i - 1, -1} end
    new[i] = string.format('%.0f:0', debt + 1)
  else
    local elapsed = math.min(math.max(now - at, 0), math.floor(debt / max) + 1)
    local t = math.max(debt - elapsed * max, 0) + window
    if t > window * max then
      return {1, i - 1, math.ceil((t - window * max) / max)}
    end
    new[i] = string.format('%.0f:%.0f', t, math.max(now, at))
  end
end
for i = 1, n do
  local ttl = tonumber(ARGV[(i - 1) * 3 + 4])
  if not existed[i] then
    if ttl > 0 then
      redis.call('SET', KEYS[i], new[i], 'EX', ttl)
    else
      redis.call('SET', KEYS[i], new[i])
    end
  else
    redis.call('SET', KEYS[i], new[i], 'KEEPTTL')
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl, 'GT') end
  end
end
return {0}
";

/// Exact range of the script's numbers (doubles are exact below 2^53).
pub(crate) const EXACT: u128 = 1 << 53;
/// Added to every TTL, so that replicas whose clocks disagree by up to this many seconds
/// never see a budget's state vanish while one of them can still accept its tickets.
pub const CLOCK_SKEW_MARGIN: u64 = 300;

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
        key_of(&self.prefix, k)
    }
}

/// `<prefix>:{<root>}:<kind>:<block>:<index>`: the hash tag is the chain's root id.
fn name(prefix: &str, kind: &str, k: &BudgetKey) -> String {
    let root = hex::encode(&k.root[..k.root.len().min(16)]);
    format!(
        "{prefix}:{{{root}}}:{kind}:{}:{}",
        hex::encode(&k.block),
        k.index
    )
}

/// A budget's state key.
pub(crate) fn key_of(prefix: &str, k: &BudgetKey) -> String {
    name(prefix, "b", k)
}

/// A budget's hash of outstanding leases (§15.4).
pub(crate) fn lease_key_of(prefix: &str, k: &BudgetKey) -> String {
    name(prefix, "l", k)
}

/// Spec §15.1: a windowed budget's debt is gone one window after its last spend; a lifetime
/// budget lives until no ticket holding its block can be presented (its `expires`, from the
/// declaring block and its ancestors), or for good (0).
pub(crate) fn state_ttl(b: &BudgetKey, now: u64) -> u64 {
    match (b.window, b.expires) {
        (0, None) => 0,
        (0, Some(e)) => e.saturating_sub(now).max(1) + CLOCK_SKEW_MARGIN,
        (w, _) => w + 1 + CLOCK_SKEW_MARGIN,
    }
}

struct RedisSpend {
    conn: Arc<Conn>,
    script: Arc<redis::Script>,
    /// The state keys, then the lease hashes.
    keys: Vec<String>,
    budgets: Vec<BudgetKey>,
    refused: Option<String>,
}

impl PreparedSpend for RedisSpend {
    fn heap_bytes(&self) -> usize {
        self.keys.iter().map(|k| k.len() + 24).sum::<usize>()
            + self
                .budgets
                .iter()
                .map(|b| std::mem::size_of::<BudgetKey>() + b.root.len() + b.block.len() + 32)
                .sum::<usize>()
    }

    fn try_spend(&self, now: u64) -> Option<Result<Spend, Denial>> {
        // Only a call without budgets is answered without a round trip.
        self.budgets.is_empty().then(|| self.spend(now))
    }

    fn spend(&self, now: u64) -> Result<Spend, Denial> {
        if self.budgets.is_empty() {
            return Ok(Spend::Spent);
        }
        if let Some(why) = &self.refused {
            return Err(crate::unavailable(why));
        }
        let mut inv = self.script.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.arg(now);
        for b in &self.budgets {
            if (u128::from(b.window) + 1) * (u128::from(b.max_calls) + 1) >= EXACT {
                return Err(crate::unavailable(format!(
                    "budget of {} calls per {}s is beyond the exact range of the Redis store",
                    b.max_calls, b.window
                )));
            }
            inv.arg(b.max_calls).arg(b.window).arg(state_ttl(b, now));
        }
        let reply: Vec<i64> = self.conn.with(|c| inv.invoke(c))?;
        match reply.as_slice() {
            [0] => Ok(Spend::Spent),
            [1, which, wait] => Ok(Spend::Exhausted {
                which: usize::try_from(*which).unwrap_or(0),
                retry_after: u64::try_from(*wait).ok(),
            }),
            [2, which] => Err(crate::unavailable(format!(
                "budget {which} of this call is leased by another replica: every replica \
                 sharing a budget must lease (docs §15.4)"
            ))),
            other => Err(crate::unavailable(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }
}

impl BudgetStore for RedisBudgets {
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        let names: Vec<String> = keys
            .iter()
            .map(|k| self.key(k))
            .chain(keys.iter().map(|k| lease_key_of(&self.prefix, k)))
            .collect();
        // A chain's keys share a slot by construction (one root per call); the server
        // policy's limits (docs §16) share another. Nothing else may join them: a key of a
        // second chain would mean a bug upstream. (On a Redis Cluster the two slots of a
        // call with a policy fail closed: docs §15.)
        let mut roots: Vec<&[u8]> = keys.iter().map(|k| k.root.as_slice()).collect();
        roots.sort_unstable();
        roots.dedup();
        let chains = roots.iter().filter(|r| **r != captix::POLICY_ROOT).count();
        let refused =
            (chains > 1).then(|| "budgets of one call come from different chains".to_string());
        Box::new(RedisSpend {
            conn: self.conn.clone(),
            script: self.script.clone(),
            keys: names,
            budgets: keys,
            refused,
        })
    }
}
