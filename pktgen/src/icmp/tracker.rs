//! Matching replies to requests: a fixed window of 65536 send times by sequence number.

use super::*;

/// What [`Tracker::on_reply`] made of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First reply to request `index`, after `rtt_us`.
    Matched {
        /// Request index (0-based).
        index: u32,
        /// Round trip, µs.
        rtt_us: i64,
    },
    /// Another reply to an answered request (timed too, as iputils does).
    Duplicate,
    /// Ignored; counted in [`Ignored`].
    Ignored,
}

/// Request/reply bookkeeping and the iputils statistics. Fixed size (the 65536-entry sequence
/// window); nothing allocates per packet.
#[derive(Debug)]
pub struct Tracker {
    target: Ipv4Addr,
    ident: Option<u16>,
    payload: usize,
    cookie: u64,
    /// Per sequence number: index of the last request sent with it, or NOT_SENT.
    sent_index: Vec<u32>,
    /// Per sequence number: its send time, ns.
    sent_ns: Vec<u64>,
    /// Per sequence number: index + 1 of the request answered, 0 when none.
    answered: Vec<u32>,
    transmitted: u32,
    received: u32,
    duplicates: u32,
    errors: u32,
    first_error: Option<String>,
    ignored: Ignored,
    tsum: i64,
    tsum2: i64,
    tmin: i64,
    tmax: i64,
}

impl Tracker {
    /// A tracker for replies from `target` with `payload` bytes carrying `cookie`. The
    /// identifier is set by [`Tracker::set_ident`] (a datagram socket learns it after binding).
    pub fn new(target: Ipv4Addr, payload: usize, cookie: u64) -> Self {
        Tracker {
            target,
            ident: None,
            payload,
            cookie,
            sent_index: vec![NOT_SENT; WINDOW],
            sent_ns: vec![0; WINDOW],
            answered: vec![0; WINDOW],
            transmitted: 0,
            received: 0,
            duplicates: 0,
            errors: 0,
            first_error: None,
            ignored: Ignored::default(),
            tsum: 0,
            tsum2: 0,
            tmin: i64::MAX,
            tmax: 0,
        }
    }

    /// The identifier replies must carry.
    pub fn set_ident(&mut self, ident: u16) {
        self.ident = Some(ident);
    }

    /// Requests sent so far (the next request's index).
    pub fn transmitted(&self) -> u32 {
        self.transmitted
    }

    /// Distinct requests answered so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Records request number `transmitted()` (sequence `transmitted() as u16`) sent at `now_ns`.
    pub fn on_send(&mut self, now_ns: u64) {
        let i = self.transmitted;
        let s = usize::from(i as u16);
        self.sent_index[s] = i;
        self.sent_ns[s] = now_ns;
        self.answered[s] = 0;
        self.transmitted += 1;
    }

    /// Records a failed send or receive.
    pub fn on_error(&mut self, e: &io::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Records a rejected packet.
    pub fn on_reject(&mut self, r: Reject) {
        match r {
            Reject::Short => self.ignored.short += 1,
            Reject::BadChecksum => self.ignored.bad_checksum += 1,
            Reject::OtherType => self.ignored.other_type += 1,
        }
    }

    /// Matches a parsed reply received at `now_ns`.
    pub fn on_reply(&mut self, r: &EchoReply<'_>, now_ns: u64) -> Outcome {
        if r.src != self.target || self.ident != Some(r.ident) {
            self.ignored.foreign += 1;
            return Outcome::Ignored;
        }
        let s = usize::from(r.seq);
        // Another run that happens to share the identifier (raw sockets see every reply).
        if self.payload >= 8 && r.payload.len() >= 8 && r.payload[..8] != self.cookie.to_be_bytes() {
            self.ignored.foreign += 1;
            return Outcome::Ignored;
        }
        let index = self.sent_index[s];
        if index == NOT_SENT {
            self.ignored.unknown_seq += 1;
            return Outcome::Ignored;
        }
        let good = r.payload.len() == self.payload
            && r.payload.iter().enumerate().all(|(i, b)| *b == payload_byte(self.cookie, i));
        if !good {
            self.ignored.bad_data += 1;
            return Outcome::Ignored;
        }
        // Microseconds, truncated, as iputils' triptime; never negative.
        let rtt_us = (now_ns.saturating_sub(self.sent_ns[s]) / 1000) as i64;
        self.add_rtt(rtt_us);
        if self.answered[s] == index + 1 {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        self.answered[s] = index + 1;
        self.received += 1;
        Outcome::Matched { index, rtt_us }
    }

    fn add_rtt(&mut self, t: i64) {
        self.tsum += t;
        self.tsum2 += t * t;
        self.tmin = self.tmin.min(t);
        self.tmax = self.tmax.max(t);
    }

    /// The summary after `elapsed_ns` (first request to last packet) on a `socket` socket.
    pub fn stats(&self, socket: &'static str, elapsed_ns: u64) -> PingStats {
        let tx = self.transmitted;
        let lost = f64::from(tx.saturating_sub(self.received));
        let loss = if tx == 0 { 0.0 } else { f64::from((lost * 100.0 / f64::from(tx)) as f32) };
        let timed = i64::from(self.received) + i64::from(self.duplicates);
        let mut rtt_us = [0i64; 4];
        let ms = |us: i64| Some(us as f64 / 1000.0);
        let (min_ms, avg_ms, max_ms, mdev_ms) = if self.received > 0 {
            let avg = self.tsum / timed;
            // iputils' order of operations (the first form avoids rounding for small times).
            let var = if self.tsum < i64::from(i32::MAX) {
                (self.tsum2 - (self.tsum * self.tsum) / timed) / timed
            } else {
                self.tsum2 / timed - avg * avg
            };
            let mdev = isqrt(var);
            rtt_us = [self.tmin, avg, self.tmax, mdev];
            (ms(self.tmin), ms(avg), ms(self.tmax), ms(mdev))
        } else {
            (None, None, None, None)
        };
        PingStats {
            target: self.target,
            socket,
            transmitted: tx,
            received: self.received,
            duplicates: self.duplicates,
            errors: self.errors,
            first_error: self.first_error.clone(),
            loss_pct: loss,
            time_ms: (elapsed_ns + 500_000) / 1_000_000,
            min_ms,
            avg_ms,
            max_ms,
            mdev_ms,
            ignored: self.ignored,
            rtt_us,
        }
    }
}
