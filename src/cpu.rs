//! CPU time of this process and of one of its threads: the client's self-check in `bench`.

use std::time::Duration;

/// User + system CPU time of the whole process so far.
#[cfg(unix)]
pub fn process_cpu_time() -> Option<Duration> {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(not(unix))]
pub fn process_cpu_time() -> Option<Duration> {
    None
}

/// CPU time of one thread of this process, by its pthread handle.
#[cfg(unix)]
pub fn thread_cpu_time(thread: libc::pthread_t) -> Option<Duration> {
    // SAFETY: the handle belongs to a thread of this process that has not been joined (the caller
    // holds its JoinHandle); both calls only write the values they are given.
    unsafe {
        let mut clock: libc::clockid_t = 0;
        if libc::pthread_getcpuclockid(thread, &mut clock) != 0 {
            return None;
        }
        let mut now: libc::timespec = std::mem::zeroed();
        if libc::clock_gettime(clock, &mut now) != 0 {
            return None;
        }
        Some(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
    }
}

/// The machine's CPU time counters (all CPUs, in clock ticks), to see how much the hypervisor took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTicks {
    pub total: u64,
    /// Time a virtual CPU wanted to run but the hypervisor ran something else.
    pub steal: u64,
}

impl MachineTicks {
    /// Reads the first line of /proc/stat (Linux); None elsewhere.
    pub fn now() -> Option<MachineTicks> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        Self::parse(text.lines().next()?)
    }

    fn parse(line: &str) -> Option<MachineTicks> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
        let counters: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        Some(MachineTicks {
            total: counters.iter().sum(),
            steal: *counters.get(7)?,
        })
    }

    /// Share of the machine's CPU time stolen between `self` and `later`.
    pub fn steal_share_until(&self, later: &MachineTicks) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let steal = later.steal.checked_sub(self.steal)?;
        (total > 0).then(|| steal as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_share_comes_from_the_proc_stat_cpu_line() {
        let before = MachineTicks::parse("cpu  100 0 50 800 10 0 0 40 0 0").unwrap();
        let after = MachineTicks::parse("cpu  200 0 90 900 10 0 0 100 0 0").unwrap();
        assert_eq!((before.total, before.steal), (1000, 40));
        assert_eq!(before.steal_share_until(&after), Some(60.0 / 300.0));
        assert!(MachineTicks::parse("cpu0 1 2 3").is_none());
    }

    #[test]
    fn cpu_time_grows_with_work_on_this_thread() {
        let before = process_cpu_time().unwrap();
        let spin_until = std::time::Instant::now() + Duration::from_millis(30);
        let mut x = 0u64;
        while std::time::Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_cpu_time().unwrap();
        assert!(after > before);
        // SAFETY: pthread_self is always valid for the calling thread.
        let this = unsafe { libc::pthread_self() };
        assert!(thread_cpu_time(this).unwrap() > Duration::ZERO);
    }
}
