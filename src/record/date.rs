//! Registry dates: FHIR-style partial dates (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), and date-times
//! that keep their time only when it carries a zone (domain edge cases 1 and 31).
//!
//! Comparisons between partial dates are made on the interval each one covers, so `2011`
//! is neither before nor after `2011-03-05`; only a definite contradiction is an error.

use std::cmp::Ordering;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How much of a date the source gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    /// A date with a time and a zone offset.
    DateTime,
}

/// A registry date. Construct with [`RecordDate::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDate {
    year: i32,
    month: Option<u32>,
    day: Option<u32>,
    /// `hh:mm[:ss[.fff]]` plus zone, kept verbatim when a zone was given.
    time: Option<String>,
    /// The source gave a time without a zone; it was dropped (edge case 31).
    time_dropped: bool,
}

/// Why a date string was refused. Messages never repeat the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD")]
    Format,
    #[error("names a month or day that does not exist")]
    OutOfRange,
    #[error("has a time of day that is not of the form hh:mm[:ss] with an optional zone")]
    Time,
}

impl RecordDate {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.f]][Z|±hh:mm]`.
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let s = s.trim();
        let (date_part, time_part) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut parts = date_part.split('-');
        let year = parse_digits(parts.next(), 4).ok_or(DateError::Format)?;
        if !(1800..=2200).contains(&year) {
            return Err(DateError::OutOfRange);
        }
        let month = match parts.next() {
            Some(m) => Some(parse_digits(Some(m), 2).ok_or(DateError::Format)? as u32),
            None => None,
        };
        let day = match parts.next() {
            Some(d) => Some(parse_digits(Some(d), 2).ok_or(DateError::Format)? as u32),
            None => None,
        };
        if parts.next().is_some() {
            return Err(DateError::Format);
        }
        if let Some(m) = month {
            if !(1..=12).contains(&m) {
                return Err(DateError::OutOfRange);
            }
        }
        if let (Some(m), Some(d)) = (month, day) {
            if NaiveDate::from_ymd_opt(year, m, d).is_none() {
                return Err(DateError::OutOfRange);
            }
        }
        let mut out = RecordDate {
            year,
            month,
            day,
            time: None,
            time_dropped: false,
        };
        if let Some(t) = time_part {
            if day.is_none() {
                return Err(DateError::Format);
            }
            let (clock, zone) = split_zone(t);
            if !valid_clock(clock) || !zone.is_none_or(valid_zone) {
                return Err(DateError::Time);
            }
            if zone.is_some() {
                out.time = Some(t.to_string());
            } else {
                out.time_dropped = true;
            }
        }
        Ok(out)
    }

    /// A full calendar date.
    pub fn from_naive(d: NaiveDate) -> Self {
        RecordDate {
            year: d.year(),
            month: Some(d.month()),
            day: Some(d.day()),
            time: None,
            time_dropped: false,
        }
    }

    pub fn precision(&self) -> Precision {
        match (self.month, self.day, &self.time) {
            (_, Some(_), Some(_)) => Precision::DateTime,
            (_, Some(_), None) => Precision::Day,
            (Some(_), None, _) => Precision::Month,
            _ => Precision::Year,
        }
    }

    /// The source gave a time of day without a zone, and it was dropped.
    pub fn time_dropped(&self) -> bool {
        self.time_dropped
    }

    /// The calendar day, when the date has day precision or better.
    pub fn naive(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month?, self.day?)
    }

    /// The first day this date can mean.
    pub fn earliest(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
            .expect("validated at parse")
    }

    /// The last day this date can mean.
    pub fn latest(&self) -> NaiveDate {
        match (self.month, self.day) {
            (Some(m), Some(d)) => NaiveDate::from_ymd_opt(self.year, m, d).expect("validated"),
            (Some(m), None) => last_day_of_month(self.year, m),
            _ => NaiveDate::from_ymd_opt(self.year, 12, 31).expect("valid"),
        }
    }

    /// `Less`/`Greater` only when the two dates are certainly ordered; `Equal` when they
    /// overlap (same day, or one is partial and covers the other).
    pub fn definite_cmp(&self, other: &RecordDate) -> Ordering {
        if self.latest() < other.earliest() {
            Ordering::Less
        } else if self.earliest() > other.latest() {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }

    /// True when `self` is certainly after `other`.
    pub fn is_definitely_after(&self, other: &RecordDate) -> bool {
        self.definite_cmp(other) == Ordering::Greater
    }

    /// Whole days from `anchor` to `self`, when both are full dates.
    pub fn days_since(&self, anchor: &RecordDate) -> Option<i64> {
        Some((self.naive()? - anchor.naive()?).num_days())
    }

    /// The FHIR `date` form (time, if any, dropped).
    pub fn fhir_date(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{:02}-{:02}", self.year, m, d),
            (Some(m), None) => format!("{:04}-{:02}", self.year, m),
            _ => format!("{:04}", self.year),
        }
    }

    /// The FHIR `dateTime` form: the date, plus the time when it carried a zone.
    pub fn fhir_date_time(&self) -> String {
        match &self.time {
            Some(t) => format!("{}T{}", self.fhir_date(), t),
            None => self.fhir_date(),
        }
    }

    /// Whole years of age at `on`, when both dates allow it exactly (edge case 32).
    pub fn whole_years_until(&self, on: &RecordDate) -> Option<u32> {
        let on_day = on.naive()?;
        // The birthday in `on`'s year may be unknown; the age is exact only if every
        // possible birth date gives the same number of years.
        let lo = years_between(self.latest(), on_day)?;
        let hi = years_between(self.earliest(), on_day)?;
        (lo == hi).then_some(lo)
    }
}

fn years_between(birth: NaiveDate, on: NaiveDate) -> Option<u32> {
    if on < birth {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .expect("valid month")
}

fn parse_digits(s: Option<&str>, len: usize) -> Option<i32> {
    let s = s?;
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn split_zone(t: &str) -> (&str, Option<&str>) {
    if let Some(stripped) = t.strip_suffix('Z') {
        return (stripped, Some("Z"));
    }
    match t.rfind(['+', '-']) {
        Some(i) => (&t[..i], Some(&t[i..])),
        None => (t, None),
    }
}

fn valid_clock(c: &str) -> bool {
    let (hms, frac) = match c.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (c, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || (frac.is_some() && parts.len() != 3) {
        return false;
    }
    let limits = [23, 59, 59];
    parts
        .iter()
        .zip(limits)
        .all(|(p, max)| parse_digits(Some(p), 2).is_some_and(|v| v <= max))
}

/// A zone: `Z` or `±hh:mm` with hours up to 14.
pub(crate) fn valid_zone(z: &str) -> bool {
    if z == "Z" {
        return true;
    }
    let Some(rest) = z.strip_prefix(['+', '-']) else {
        return false;
    };
    match rest.split_once(':') {
        Some((h, m)) => {
            parse_digits(Some(h), 2).is_some_and(|v| v <= 14)
                && parse_digits(Some(m), 2).is_some_and(|v| v <= 59)
        }
        None => false,
    }
}

impl fmt::Display for RecordDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fhir_date_time())
    }
}

impl Serialize for RecordDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.fhir_date_time())
    }
}

impl<'de> Deserialize<'de> for RecordDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        RecordDate::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for RecordDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RecordDate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A date: YYYY, YYYY-MM or YYYY-MM-DD (partial dates are kept as given). A time may follow only with a zone (YYYY-MM-DDThh:mm[:ss]Z or ±hh:mm); a time without a zone is dropped with a warning.",
            "pattern": "^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_keep_their_precision() {
        assert_eq!(RecordDate::parse("2011").unwrap().fhir_date(), "2011");
        assert_eq!(RecordDate::parse("2011-03").unwrap().fhir_date(), "2011-03");
        assert_eq!(
            RecordDate::parse("2011-03").unwrap().precision(),
            Precision::Month
        );
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert_eq!(RecordDate::parse("2020-13-01"), Err(DateError::OutOfRange));
        assert_eq!(RecordDate::parse("2021-02-29"), Err(DateError::OutOfRange));
        assert_eq!(RecordDate::parse("20-01-01"), Err(DateError::Format));
        assert_eq!(RecordDate::parse("2020-1-01"), Err(DateError::Format));
    }

    #[test]
    fn a_time_without_zone_is_dropped_and_flagged() {
        let d = RecordDate::parse("2020-05-01T10:30").unwrap();
        assert!(d.time_dropped());
        assert_eq!(d.fhir_date_time(), "2020-05-01");
        let z = RecordDate::parse("2020-05-01T10:30:00+02:00").unwrap();
        assert_eq!(z.fhir_date_time(), "2020-05-01T10:30:00+02:00");
        assert!(RecordDate::parse("2020-05-01T25:00Z").is_err());
    }

    #[test]
    fn partial_dates_only_conflict_when_certainly_ordered() {
        let y = RecordDate::parse("2011").unwrap();
        let d = RecordDate::parse("2011-03-05").unwrap();
        assert_eq!(y.definite_cmp(&d), Ordering::Equal);
        let later = RecordDate::parse("2012-01").unwrap();
        assert!(later.is_definitely_after(&d));
    }

    #[test]
    fn age_is_computed_only_when_precision_allows() {
        let on = RecordDate::parse("2020-06-15").unwrap();
        assert_eq!(
            RecordDate::parse("1980-06-15")
                .unwrap()
                .whole_years_until(&on),
            Some(40)
        );
        assert_eq!(
            RecordDate::parse("1980-02").unwrap().whole_years_until(&on),
            Some(40)
        );
        // Born some time in 1980: 39 or 40 on 2020-06-15.
        assert_eq!(
            RecordDate::parse("1980").unwrap().whole_years_until(&on),
            None
        );
    }
}
