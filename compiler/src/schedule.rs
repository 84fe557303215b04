//! A task's `schedule`: a five-field cron expression (or a macro such as
//! `@daily`), parsed once into the set of values of each field, so that every
//! target writes the same times: a Kubernetes `CronJob` takes the expression
//! itself, a systemd timer the expanded sets (`targets::systemd`).
//!
//! The meaning is the common one of Vixie cron, Kubernetes (robfig/cron) and
//! croniter: minute, hour, day of month, month, day of week (0 or 7 is Sunday,
//! names allowed), `*`, `a-b`, lists and `/step`; when both day fields are
//! restricted, a day matching either runs. The one form on which those
//! implementations disagree (a `*/n` day field beside a restricted other) is
//! refused, as is a schedule that never runs.

use std::ops::Range;

/// The fields of a cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    /// The smallest and largest value written (7 for Sunday is read as 0).
    pub fn bounds(self) -> (u8, u8) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of month",
            Field::Month => "month",
            Field::DayOfWeek => "day of week",
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            Field::DayOfWeek => &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            _ => &[],
        }
    }

    /// The value of a name (`jan` is 1, `sun` is 0).
    fn named(self, word: &str) -> Option<u8> {
        let at = self
            .names()
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))?;
        let first = if self == Field::Month { 1 } else { 0 };
        Some(at as u8 + first)
    }
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The expression as written (a macro expanded), for targets that take cron.
    pub expression: String,
    /// The values of each field, a bit per value (day of week: Sunday is bit 0).
    sets: [u64; 5],
    /// The field was `*` (for the day fields: unrestricted).
    star: [bool; 5],
}

/// Why a schedule cannot be read: the byte range of the expression at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub at: Range<usize>,
    pub message: String,
    pub help: String,
}

const MACROS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const FORMS: &str = "five fields `MINUTE HOUR DAY MONTH WEEKDAY` (`0 3 * * *`), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`";

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let whole = 0..text.len();
        if text.starts_with('@') {
            let expanded = MACROS
                .iter()
                .find(|(m, _)| *m == text.trim())
                .map(|(_, e)| *e)
                .ok_or_else(|| ScheduleError {
                    at: whole.clone(),
                    message: format!("`{text}` is not a schedule macro"),
                    help: format!("a schedule is {FORMS}"),
                })?;
            let mut s = Schedule::parse(expanded).expect("every macro is a valid schedule");
            s.expression = expanded.to_string();
            return Ok(s);
        }
        let words = words(text);
        if words.len() != 5 {
            return Err(ScheduleError {
                at: whole,
                message: format!("a schedule has five fields, this one has {}", words.len()),
                help: format!("a schedule is {FORMS}"),
            });
        }
        let mut sets = [0u64; 5];
        let mut star = [false; 5];
        for (i, (field, (word, at))) in Field::ALL.iter().zip(&words).enumerate() {
            sets[i] = field_set(*field, word, at.start)?;
            star[i] = *word == "*";
        }
        let schedule = Schedule {
            expression: words.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(" "),
            sets,
            star,
        };
        schedule.check_days(&words)?;
        Ok(schedule)
    }

    /// The values of a field, ascending (day of week: 0 is Sunday, 6 Saturday).
    pub fn values(&self, field: Field) -> impl Iterator<Item = u8> + '_ {
        let set = self.sets[field as usize];
        (0u8..64).filter(move |v| set & (1 << v) != 0)
    }

    /// The field takes every value of its range.
    pub fn is_every(&self, field: Field) -> bool {
        let (lo, hi) = field.bounds();
        let hi = if field == Field::DayOfWeek { 6 } else { hi };
        (lo..=hi).all(|v| self.sets[field as usize] & (1 << v) != 0)
    }

    /// Both day fields restricted: a day matching either one runs.
    pub fn either_day(&self) -> bool {
        !self.star[Field::DayOfMonth as usize] && !self.star[Field::DayOfWeek as usize]
    }

    fn check_days(&self, words: &[(&str, Range<usize>)]) -> Result<(), ScheduleError> {
        let (dom, dow) = (&words[2], &words[4]);
        for (field, other) in [(dom, dow), (dow, dom)] {
            if field.0.starts_with('*') && field.0 != "*" && other.0 != "*" {
                return Err(ScheduleError {
                    at: field.1.clone(),
                    message: format!(
                        "`{}` beside a restricted `{}` is read differently by cron implementations",
                        field.0, other.0
                    ),
                    help: "write the days as a range (`1-31/2`, `0-6/2`): with both day fields restricted, a day matching either runs".into(),
                });
            }
        }
        if self.star[Field::DayOfWeek as usize] {
            // Only the day of month decides: some chosen day must exist in some
            // chosen month (29 February does, in leap years).
            const DAYS: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let first = self.values(Field::DayOfMonth).next().unwrap_or(1);
            if !self
                .values(Field::Month)
                .any(|m| first <= DAYS[m as usize - 1])
            {
                return Err(ScheduleError {
                    at: dom.1.start..words[3].1.end,
                    message: "this schedule never runs: no chosen month has the chosen day".into(),
                    help: "choose a day that every chosen month has (at most 28 for February)"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// The whitespace-separated words of `text`, with their byte ranges.
fn words(text: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((&text[s..i], s..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// The set of one field: a comma-separated list of `*`, `N`, `A-B`, each with
/// an optional `/STEP`.
fn field_set(field: Field, word: &str, offset: usize) -> Result<u64, ScheduleError> {
    let mut set = 0u64;
    let mut at = offset;
    for item in word.split(',') {
        set |= item_set(field, item, at)?;
        at += item.len() + 1;
    }
    if field == Field::DayOfWeek && set & (1 << 7) != 0 {
        set = (set & !(1 << 7)) | 1;
    }
    Ok(set)
}

fn item_set(field: Field, item: &str, at: usize) -> Result<u64, ScheduleError> {
    let span = at..at + item.len();
    let fail = |message: String| ScheduleError {
        at: span.clone(),
        message,
        help: help(field),
    };
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => {
            let step: u8 = s
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| fail(format!("`{s}` is not a step (a whole number from 1)")))?;
            (r, Some(step))
        }
        None => (item, None),
    };
    let (lo, hi) = field.bounds();
    let (first, last) = if range == "*" {
        (lo, hi)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (value(field, a, &fail)?, value(field, b, &fail)?);
        if a > b {
            return Err(fail(format!(
                "the range `{range}` runs backwards ({a} is after {b})"
            )));
        }
        (a, b)
    } else {
        let a = value(field, range, &fail)?;
        // `A/STEP` runs from A to the end of the field, as in Vixie cron.
        (a, if step.is_some() { hi } else { a })
    };
    let step = step.unwrap_or(1);
    Ok((first..=last)
        .step_by(step as usize)
        .fold(0u64, |s, v| s | 1 << v))
}

fn value(
    field: Field,
    word: &str,
    fail: &dyn Fn(String) -> ScheduleError,
) -> Result<u8, ScheduleError> {
    let (lo, hi) = field.bounds();
    let v = match word.parse::<u8>() {
        Ok(v) => v,
        Err(_) if word.bytes().all(|b| b.is_ascii_digit()) && !word.is_empty() => {
            return Err(fail(format!(
                "{word} is out of range for the {}",
                field.what()
            )))
        }
        Err(_) => field.named(word).ok_or_else(|| {
            fail(format!(
                "`{word}` is not a value of the {} field",
                field.what()
            ))
        })?,
    };
    if v < lo || v > hi {
        return Err(fail(format!(
            "{v} is out of range for the {} ({lo}-{hi})",
            field.what()
        )));
    }
    Ok(v)
}

fn help(field: Field) -> String {
    let (lo, hi) = field.bounds();
    let names = match field {
        Field::Month => ", or `jan`-`dec`",
        Field::DayOfWeek => " (0 and 7 are Sunday), or `sun`-`sat`",
        _ => "",
    };
    format!(
        "the {} takes {lo}-{hi}{names}, as `*`, `N`, `A-B`, lists `A,B` and steps `*/N`",
        field.what()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Schedule {
        Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn error(text: &str) -> ScheduleError {
        match Schedule::parse(text) {
            Ok(s) => panic!("{text} parsed: {s:?}"),
            Err(e) => e,
        }
    }

    fn set(s: &Schedule, f: Field) -> Vec<u8> {
        s.values(f).collect()
    }

    #[test]
    fn fields_expand_to_their_values() {
        let s = parse("*/15 2,14 1-31/10 jan-mar mon-fri");
        assert_eq!(set(&s, Field::Minute), [0, 15, 30, 45]);
        assert_eq!(set(&s, Field::Hour), [2, 14]);
        assert_eq!(set(&s, Field::DayOfMonth), [1, 11, 21, 31]);
        assert_eq!(set(&s, Field::Month), [1, 2, 3]);
        assert_eq!(set(&s, Field::DayOfWeek), [1, 2, 3, 4, 5]);
        assert!(s.either_day());
        let s = parse("0 0 * * 7");
        assert_eq!(set(&s, Field::DayOfWeek), [0]);
        assert!(!s.either_day());
        let s = parse("5/20 * * * *");
        assert_eq!(set(&s, Field::Minute), [5, 25, 45]);
        assert_eq!(parse("@daily").expression, "0 0 * * *");
    }

    #[test]
    fn errors_point_at_the_item() {
        let e = error("0 25 * * *");
        assert_eq!(
            (e.at, e.message.as_str()),
            (2..4, "25 is out of range for the hour (0-23)")
        );
        let e = error("0 0 1,32 * *");
        assert_eq!(e.at, 6..8);
        assert!(error("0 0 * *").message.contains("five fields"));
        assert!(error("0 0 30 2 *").message.contains("never runs"));
        assert!(Schedule::parse("0 0 */2 * 1").is_err());
        assert!(Schedule::parse("0 0 * * */0").is_err());
        assert!(Schedule::parse("0 0 5-1 * *").is_err());
        assert!(Schedule::parse("@reboot").is_err());
        assert!(Schedule::parse("0 0 29 2 *").is_ok());
    }
}
