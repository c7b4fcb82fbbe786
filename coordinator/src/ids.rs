//! Identifiers that cross the wire: jobs, tasks, tiles and workers.
//!
//! A task id names a job, a scale and either the scale's style target or one of its tiles:
//! `<job>/<scale>/style` or `<job>/<scale>/<tile>`. Parsing is strict because ids come back
//! from workers.

use std::fmt;
use std::str::FromStr;

/// Longest id accepted from the wire, in bytes.
const MAX_ID_BYTES: usize = 128;

/// Identifies a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

/// Identifies a worker process, as handed out by `Register`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(String);

/// Identifies a tile within one scale of a job (its index in the tile plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId(pub u32);

/// An identifier from the wire that is empty, too long or has characters outside `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} id {value:?}")]
pub struct InvalidId {
    /// Which kind of id.
    pub what: &'static str,
    /// The value given, shortened.
    pub value: String,
}

fn check(what: &'static str, value: &str) -> Result<(), InvalidId> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_BYTES
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            what,
            value: value.chars().take(MAX_ID_BYTES).collect(),
        })
    }
}

impl JobId {
    /// Returns a fresh random job id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Checks and wraps an id that came from the wire.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        check("job", value)?;
        Ok(Self(value.to_owned()))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl WorkerId {
    /// Returns a fresh random worker id.
    pub fn random() -> Self {
        Self(format!("w-{}", uuid::Uuid::new_v4().simple()))
    }

    /// Checks and wraps an id that came from the wire.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        check("worker", value)?;
        Ok(Self(value.to_owned()))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a task computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// The blended Gram matrices of the job's styles at one scale.
    StyleTarget,
    /// One tile of a scale (tile 0 when the scale is optimised whole).
    Tile(TileId),
}

/// Identifies one unit of work: a job, a scale and what to compute there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The job the task belongs to.
    pub job: JobId,
    /// The scale, 0 for the coarsest.
    pub scale: u32,
    /// Style target or tile.
    pub kind: TaskKind,
}

impl TaskId {
    /// Returns the id of the style-target task of a scale.
    pub fn style(job: &JobId, scale: u32) -> Self {
        Self {
            job: job.clone(),
            scale,
            kind: TaskKind::StyleTarget,
        }
    }

    /// Returns the id of a tile task.
    pub fn tile(job: &JobId, scale: u32, tile: TileId) -> Self {
        Self {
            job: job.clone(),
            scale,
            kind: TaskKind::Tile(tile),
        }
    }

    /// Returns the tile, or `None` for a style-target task.
    pub fn tile_id(&self) -> Option<TileId> {
        match self.kind {
            TaskKind::Tile(tile) => Some(tile),
            TaskKind::StyleTarget => None,
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TaskKind::StyleTarget => write!(f, "{}/{}/style", self.job, self.scale),
            TaskKind::Tile(tile) => write!(f, "{}/{}/{}", self.job, self.scale, tile),
        }
    }
}

impl FromStr for TaskId {
    type Err = InvalidId;

    fn from_str(value: &str) -> Result<Self, InvalidId> {
        let invalid = || InvalidId {
            what: "task",
            value: value.chars().take(MAX_ID_BYTES).collect(),
        };
        let mut parts = value.split('/');
        let (Some(job), Some(scale), Some(last), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let job = JobId::parse(job).map_err(|_| invalid())?;
        let scale = scale.parse().map_err(|_| invalid())?;
        let kind = match last {
            "style" => TaskKind::StyleTarget,
            tile => TaskKind::Tile(TileId(tile.parse().map_err(|_| invalid())?)),
        };
        Ok(Self { job, scale, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_round_trip() {
        let job = JobId::parse("abc-1").unwrap();
        for id in [TaskId::style(&job, 2), TaskId::tile(&job, 0, TileId(17))] {
            assert_eq!(id.to_string().parse::<TaskId>().unwrap(), id);
        }
        assert_eq!(TaskId::tile(&job, 3, TileId(4)).to_string(), "abc-1/3/4");
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(JobId::parse("").is_err());
        assert!(JobId::parse("a/b").is_err());
        assert!(JobId::parse("../etc").is_err());
        assert!("a/1".parse::<TaskId>().is_err());
        assert!("a/x/style".parse::<TaskId>().is_err());
        assert!("a/1/2/3".parse::<TaskId>().is_err());
    }
}
