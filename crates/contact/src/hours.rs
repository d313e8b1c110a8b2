//! Hours of operation: weekly opening ranges in a queue's time zone, and closed days.
//!
//! A range is `[open, close)` in local civil time; `close` of `24:00` is written as `00:00` and
//! means midnight at the end of the day. Holidays close the whole day whatever the weekly ranges
//! say. Time comes in as a timestamp and is read in the hours' own zone, so a center in Tokyo
//! opens at 09:00 Tokyo time wherever genkan runs.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

/// When a queue takes contacts.
#[derive(Debug, Clone)]
pub struct Hours {
    /// Zone the ranges are read in.
    pub zone: TimeZone,
    /// Open ranges per weekday, Monday first.
    pub weekly: [Vec<(Time, Time)>; 7],
    /// Whole days closed (public holidays, company days off).
    pub holidays: BTreeSet<Date>,
}

impl Hours {
    /// Open every minute of every day.
    pub fn always() -> Self {
        Self {
            zone: TimeZone::UTC,
            weekly: std::array::from_fn(|_| vec![(Time::midnight(), Time::midnight())]),
            holidays: BTreeSet::new(),
        }
    }

    /// The same ranges on the given weekdays, closed on the others.
    pub fn on_days(zone: TimeZone, days: &[Weekday], open: Time, close: Time) -> Self {
        let mut weekly: [Vec<(Time, Time)>; 7] = std::array::from_fn(|_| Vec::new());
        for day in days {
            weekly[usize::from(day.to_monday_zero_offset().unsigned_abs())].push((open, close));
        }
        Self {
            zone,
            weekly,
            holidays: BTreeSet::new(),
        }
    }

    /// Whether contacts are taken at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let local = self.zone.to_datetime(now);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let time = local.time();
        self.weekly[day].iter().any(|&(open, close)| {
            let closes_at_midnight = close == Time::midnight();
            time >= open && (closes_at_midnight || time < close)
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn tokyo_weekdays() -> Hours {
        let mut hours = Hours::on_days(
            TimeZone::get("Asia/Tokyo").unwrap(),
            &[
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            time(9, 0, 0, 0),
            time(18, 0, 0, 0),
        );
        hours.holidays.insert(date(2026, 11, 23));
        hours
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_are_read_in_the_hours_zone_and_holidays_close_the_day() {
        let hours = tokyo_weekdays();
        // Wednesday 2026-11-25 in Tokyo.
        assert!(!hours.is_open(at("2026-11-25T08:59:59+09:00")));
        assert!(hours.is_open(at("2026-11-25T09:00:00+09:00")));
        assert!(hours.is_open(at("2026-11-25T17:59:59+09:00")));
        assert!(!hours.is_open(at("2026-11-25T18:00:00+09:00")));
        // 01:30 UTC is 10:30 in Tokyo.
        assert!(hours.is_open(at("2026-11-25T01:30:00Z")));
        // Saturday, and a Monday that is a holiday (勤労感謝の日).
        assert!(!hours.is_open(at("2026-11-28T10:00:00+09:00")));
        assert!(!hours.is_open(at("2026-11-23T10:00:00+09:00")));
        assert!(Hours::always().is_open(at("2026-11-28T03:00:00Z")));
    }
}
