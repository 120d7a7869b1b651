//! Budget leases on Redis (docs §15.4): the shared side of [`captix::lease`].

use std::sync::Arc;
use std::time::Duration;

use captix::budget::BudgetKey;
use captix::lease::{LeaseOptions, LeaseSource, Leased, Take, GRACE};
use captix::Denial;

use crate::budgets::{state_ttl, EXACT};
use crate::{Conn, Options};

/// Lua shared by both scripts: the arithmetic of docs §10.3 and §10.6 on `debt:at` values,
/// exact in doubles below 2^53.
const COMMON: &str = r"
-- The state of a key as (debt, at, fresh): `fresh` for a version 1 value, whose TTL followed
-- a presenting chain (maybe a short-lived child's): it must be rewritten with this budget's
-- own TTL, refused or not.
local function parse(raw, max, window)
  if not raw then return 0, 0, false end
  local d, a = string.match(raw, '^(%d+):(%d+)$')
  if d then return tonumber(d), tonumber(a), false end
  local tat = tonumber(raw) or 0
  if window == 0 or max == 0 then return tat, 0, true end
  local at = math.max(math.floor(tat / max) - window, 0)
  return tat - at * max, at, true
end
local function drained(debt, at, now, max, window)
  if max == 0 then return debt end
  local elapsed = math.min(math.max(now - at, 0), math.floor(debt / max) + 1)
  return math.max(debt - elapsed * max, 0)
end
local function charge(debt, at, e, units, max, window)
  if units == 0 then return debt, at end
  if window == 0 then return debt + units, at end
  return drained(debt, at, e, max, window) + units * window, math.max(at, e)
end
local function owed(debt, at, t, e, max, window)
  if debt > 0 and at > e then return debt + (at - t) * max end
  return drained(debt, at, e, max, window) + math.max(e - t, 0) * max
end
local function afford(debt, at, t, e, max, window)
  if max == 0 then return 0 end
  if window == 0 then return math.max(max - debt, 0) end
  return math.floor(math.max(window * max - owed(debt, at, t, e, max, window), 0) / window)
end
local function store(key, debt, at, ttl, fresh)
  local value = string.format('%.0f:%.0f', debt, at)
  if not fresh and redis.call('EXISTS', key) == 1 then
    redis.call('SET', key, value, 'KEEPTTL')
    if ttl > 0 then redis.call('EXPIRE', key, ttl, 'GT') end
  elseif ttl > 0 then
    redis.call('SET', key, value, 'EX', ttl)
  else
    redis.call('SET', key, value)
  end
end
";

/// KEYS: per budget its state key and its lease hash. ARGV: lease id, want, ttl, grace, the id
/// of an ended lease to settle first ('' for none) and its used units, then per budget
/// max_calls, window, state TTL, lease TTL. The source's clock is Redis's `TIME`.
/// Returns {0, units, ttl} granted (ttl 0: one unit spent outright), {1, position,
/// retry_after or -1} exhausted, {2} when the lease id is in use.
const TAKE: &str = r"
local t = tonumber(redis.call('TIME')[1])
local id, want, ttl, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prev, used = ARGV[5], tonumber(ARGV[6])
local n = #KEYS / 2
-- an id in use is refused before anything is written
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i], id) == 1 then return {2} end
end
local budgets = {}
for i = 1, n do
  local b = {
    max = tonumber(ARGV[6 + (i - 1) * 4 + 1]), window = tonumber(ARGV[6 + (i - 1) * 4 + 2]),
    sttl = tonumber(ARGV[6 + (i - 1) * 4 + 3]), lttl = tonumber(ARGV[6 + (i - 1) * 4 + 4]),
    skey = KEYS[2 * i - 1], lkey = KEYS[2 * i], dirty = false,
  }
  b.debt, b.at, b.fresh = parse(redis.call('GET', b.skey), b.max, b.window)
  b.dirty = b.fresh
  -- the caller's ended lease, settled first (as SETTLE does)
  local ended = prev ~= '' and redis.call('HGET', b.lkey, prev)
  if ended then
    redis.call('HDEL', b.lkey, prev)
    local u, e = string.match(ended, '^(%d+):(%d+)$')
    b.debt, b.at = charge(b.debt, b.at, tonumber(e), math.min(used, tonumber(u)), b.max, b.window)
    b.dirty = true
  end
  local leases = redis.call('HGETALL', b.lkey)
  local vd, va = nil, nil
  local live, stale = {}, {}
  for j = 1, #leases, 2 do
    local u, e = string.match(leases[j + 1], '^(%d+):(%d+)$')
    u, e = tonumber(u) or 0, tonumber(e) or 0
    if t > e + grace then
      stale[#stale + 1] = {u, e}
      redis.call('HDEL', b.lkey, leases[j])
    else
      live[#live + 1] = {u, e}
    end
  end
  -- leases whose holders did not settle in time: charged in full, in order of their ends
  table.sort(stale, function(x, y) return x[2] < y[2] end)
  for _, l in ipairs(stale) do
    b.debt, b.at = charge(b.debt, b.at, l[2], l[1], b.max, b.window)
    b.dirty = true
  end
  b.vd, b.va = b.debt, b.at
  -- in order of their ends: the GCRA's own order, the same in every source
  table.sort(live, function(x, y) return x[2] < y[2] end)
  for _, l in ipairs(live) do
    b.vd, b.va = charge(b.vd, b.va, l[2], l[1], b.max, b.window)
  end
  budgets[i] = b
end
local units = 0
if want > 1 and ttl > 0 then
  units = want
  for _, b in ipairs(budgets) do
    units = math.min(units, afford(b.vd, b.va, t, t + ttl, b.max, b.window))
  end
end
if units == 0 then
  ttl = 0
  for i, b in ipairs(budgets) do
    if afford(b.vd, b.va, t, t, b.max, b.window) == 0 then
      for _, c in ipairs(budgets) do
        if c.dirty then store(c.skey, c.debt, c.at, c.sttl, c.fresh) end
      end
      if b.window == 0 or b.max == 0 then return {1, i - 1, -1} end
      local over = owed(b.vd, b.va, t, t, b.max, b.window) + b.window - b.window * b.max
      return {1, i - 1, math.max(math.ceil(over / b.max), 1)}
    end
  end
  units = 1
end
for _, b in ipairs(budgets) do
  if ttl == 0 then
    b.debt, b.at = charge(b.debt, b.at, t, 1, b.max, b.window)
    store(b.skey, b.debt, b.at, b.sttl, b.fresh)
  else
    if b.dirty then store(b.skey, b.debt, b.at, b.sttl, b.fresh) end
    redis.call('HSET', b.lkey, id, string.format('%.0f:%.0f', units, t + ttl))
    if b.lttl > 0 then
      redis.call('EXPIRE', b.lkey, b.lttl, 'GT')
      if redis.call('TTL', b.lkey) < 0 then redis.call('EXPIRE', b.lkey, b.lttl) end
    end
  end
end
return {0, units, ttl}
";

/// KEYS: per budget its state key and its lease hash. ARGV: lease id, used, then per budget
/// max_calls, window, state TTL. Charges the used units at the lease's end; a lease no longer
/// there (charged in full after its grace) is left as it is.
const SETTLE: &str = r"
local id, used = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local max, window = tonumber(ARGV[2 + (i - 1) * 3 + 1]), tonumber(ARGV[2 + (i - 1) * 3 + 2])
  local sttl = tonumber(ARGV[2 + (i - 1) * 3 + 3])
  local skey, lkey = KEYS[2 * i - 1], KEYS[2 * i]
  local raw = redis.call('HGET', lkey, id)
  if raw then
    redis.call('HDEL', lkey, id)
    local u, e = string.match(raw, '^(%d+):(%d+)$')
    local debt, at, fresh = parse(redis.call('GET', skey), max, window)
    debt, at = charge(debt, at, tonumber(e), math.min(used, tonumber(u)), max, window)
    store(skey, debt, at, sttl, fresh)
  end
end
return 0
";

/// A state TTL lengthened by `extra` seconds (a lease's charge may land that much later);
/// 0, a state kept for good, stays 0.
fn longer(ttl: u64, extra: u64) -> u64 {
    if ttl == 0 {
        0
    } else {
        ttl + extra
    }
}

/// The shared side of budget leases on Redis (docs §15.4): `Leased::new(RedisLeases::new(..),
/// ..)`, or [`leased`] with its flusher.
pub struct RedisLeases {
    conn: Arc<Conn>,
    prefix: String,
    take: redis::Script,
    settle: redis::Script,
}

impl RedisLeases {
    /// A source on the Redis at `url`. Connects on first use.
    pub fn new(url: &str, options: Options) -> Result<Self, captix::Error> {
        Ok(RedisLeases {
            conn: Arc::new(Conn::new(url, options.timeout)?),
            prefix: options.prefix,
            take: redis::Script::new(&format!("{COMMON}{TAKE}")),
            settle: redis::Script::new(&format!("{COMMON}{SETTLE}")),
        })
    }

    /// The state key and the lease hash of a budget (same hash tag: one Cluster slot per chain).
    pub fn keys(&self, k: &BudgetKey) -> (String, String) {
        let state = crate::budgets::key_of(&self.prefix, k);
        let leases = crate::budgets::lease_key_of(&self.prefix, k);
        (state, leases)
    }

    #[allow(clippy::too_many_arguments)]
    fn invoke_take(
        &self,
        keys: &[BudgetKey],
        ended: Option<(u64, u64)>,
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        Self::check_range(keys)?;
        let mut inv = self.take.prepare_invoke();
        for k in keys {
            let (s, l) = self.keys(k);
            inv.key(s).key(l);
        }
        inv.arg(id).arg(want).arg(ttl).arg(GRACE);
        match ended {
            Some((prev, used)) => inv.arg(prev).arg(used),
            None => inv.arg("").arg(0),
        };
        for b in keys {
            // A lease hash lives as long as the state it will be charged into; 0 (a budget
            // kept for good) stays 0.
            let life = longer(state_ttl(b, now), ttl + GRACE);
            inv.arg(b.max_calls).arg(b.window).arg(life).arg(life);
        }
        let reply: Vec<i64> = self.conn.with(|c| inv.invoke(c))?;
        match reply.as_slice() {
            [0, units, ttl] => Ok(Take::Granted {
                units: u64::try_from(*units).unwrap_or(0).max(1),
                ttl: u64::try_from(*ttl).unwrap_or(0),
            }),
            [1, which, wait] => Ok(Take::Exhausted {
                which: usize::try_from(*which).unwrap_or(0),
                retry_after: u64::try_from(*wait).ok(),
            }),
            [2] => Err(crate::unavailable("lease id already in use")),
            other => Err(crate::unavailable(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }

    fn check_range(keys: &[BudgetKey]) -> Result<(), Denial> {
        for b in keys {
            if (u128::from(b.window) + 1) * (u128::from(b.max_calls) + 1) >= EXACT {
                return Err(crate::unavailable(format!(
                    "budget of {} calls per {}s is beyond the exact range of the Redis store",
                    b.max_calls, b.window
                )));
            }
        }
        Ok(())
    }
}

impl LeaseSource for RedisLeases {
    fn take(
        &self,
        keys: &[BudgetKey],
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        self.invoke_take(keys, None, id, want, ttl, now)
    }

    fn settle_and_take(
        &self,
        keys: &[BudgetKey],
        ended: (u64, u64),
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        self.invoke_take(keys, Some(ended), id, want, ttl, now)
    }

    fn settle(&self, keys: &[BudgetKey], id: u64, used: u64, now: u64) -> Result<(), Denial> {
        let mut inv = self.settle.prepare_invoke();
        for k in keys {
            let (s, l) = self.keys(k);
            inv.key(s).key(l);
        }
        inv.arg(id).arg(used);
        for b in keys {
            inv.arg(b.max_calls)
                .arg(b.window)
                .arg(longer(state_ttl(b, now), GRACE));
        }
        self.conn.with(|c| inv.invoke::<i64>(c)).map(|_| ())
    }
}

/// A budget store on Redis that spends from leases (docs §15.4), with a thread that settles
/// ended leases every 250 ms, for as long as the store lives.
pub fn leased(
    url: &str,
    options: Options,
    lease: LeaseOptions,
) -> Result<Arc<Leased<RedisLeases>>, captix::Error> {
    let store = Arc::new(Leased::new(RedisLeases::new(url, options)?, lease));
    store
        .spawn_flusher(Duration::from_millis(250), captix::time::now)
        .map_err(|e| captix::Error::InvalidRestriction(format!("lease flusher: {e}")))?;
    Ok(store)
}
