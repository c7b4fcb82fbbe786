//! Moving a job to its next step, from persisted state alone.

use std::sync::Arc;

use deepstyle_proto::v1::{self as pb, task, JobSpec};
use prost::Message;
use tracing::{error, info, info_span, Instrument};

use super::plan::{self, JobPlan};
use super::{work, JobError, JobManager, Result};
use crate::blob;
use crate::ids::{JobId, TaskId, TileId};
use crate::store::{JobRecord, NewTask, TaskState};

/// What a scale waits for, or that it is done.
enum Step {
    Waiting,
    ScaleDone,
}

impl JobManager {
    /// Advances every active job; run at startup so a restarted coordinator resumes its jobs.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        for id in self.store.active_jobs().await? {
            if let Err(e) = self.advance(&id).await {
                error!(job_id = %id, error = %e, "cannot advance job");
            }
        }
        Ok(())
    }

    /// Takes every step a job can take now; failures of the job's own data fail the job.
    pub async fn advance(self: &Arc<Self>, id: &JobId) -> Result<()> {
        let lock = {
            let mut locks = self.job_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let span = info_span!("job", job_id = %id);
        let result = self.advance_locked(id).instrument(span).await;
        match result {
            Err(e @ (JobError::Store(_) | JobError::Blob(_))) => Err(e),
            Err(e) => {
                error!(job_id = %id, error = %e, "job failed");
                if self.store.fail_job(id, &e.to_string()).await? {
                    self.changed(id);
                }
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    async fn advance_locked(self: &Arc<Self>, id: &JobId) -> Result<()> {
        let Some(record) = self.store.job(id).await? else {
            return Err(JobError::JobNotFound(id.clone()));
        };
        if !record.state.is_active() {
            self.job_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
            return Ok(());
        }
        let spec = JobSpec::decode(record.job.spec.as_slice())
            .map_err(|e| JobError::Corrupt(format!("job {id} spec: {e}")))?;
        let job_plan = plan::plan(&spec, record.job.width, record.job.height)?;
        for scale in 0..job_plan.scales.len() {
            if self
                .blobs
                .exists(&blob::scale_result_key(id, scale as u32))
                .await?
            {
                continue;
            }
            match self.advance_scale(&record, &spec, &job_plan, scale).await? {
                Step::Waiting => return Ok(()),
                Step::ScaleDone => {}
            }
        }
        self.finish(&record, &spec, &job_plan).await
    }

    async fn advance_scale(
        &self,
        record: &JobRecord,
        spec: &JobSpec,
        job_plan: &JobPlan,
        scale: usize,
    ) -> Result<Step> {
        let id = &record.job.id;
        let s = scale as u32;
        let num_tiles = job_plan.num_tiles(scale);
        let style_task = TaskId::style(id, s);
        match self.store.task_state(&style_task).await? {
            Some(TaskState::Done { .. }) => {}
            Some(_) => return Ok(Step::Waiting),
            None => {
                let payload = style_payload(spec, job_plan, &style_task);
                self.store.set_progress(id, s, num_tiles as u32).await?;
                self.store
                    .enqueue(
                        id,
                        &[NewTask {
                            id: style_task,
                            payload,
                        }],
                    )
                    .await?;
                self.store
                    .append_event(id, &format!("scale {s}: style target queued"))
                    .await?;
                self.queued(id);
                return Ok(Step::Waiting);
            }
        };

        // Phases run one after the other and a phase's tiles are queued together, so the tiles
        // done so far are always the first phases in full plus part of the next one.
        let phases = job_plan.phases(scale);
        let tiles_done = self.store.tiles_done(id, s).await? as usize;
        let mut before = 0;
        for (phase, tiles) in phases.iter().enumerate() {
            if tiles_done >= before + tiles.len() {
                before += tiles.len();
                continue;
            }
            let first = TaskId::tile(id, s, TileId(tiles[0] as u32));
            if self.store.task_state(&first).await?.is_none() {
                let earlier: Vec<usize> = phases[..phase].iter().flatten().copied().collect();
                self.queue_phase(record, spec, job_plan, scale, (phase, tiles), &earlier)
                    .await?;
                self.store
                    .append_event(id, &format!("scale {s}: phase {phase} queued"))
                    .await?;
            }
            return Ok(Step::Waiting);
        }

        let mut results = Vec::with_capacity(num_tiles);
        for tile in 0..num_tiles {
            results.push(self.tile_result(id, s, tile).await?);
        }
        let (limits, plan_c) = (self.limits, job_plan.clone());
        let stitched =
            tokio::task::spawn_blocking(move || work::stitch(&plan_c, scale, &results, &limits))
                .await
                .map_err(|_| JobError::Internal("stitch task panicked"))??;
        self.blobs
            .put(&blob::scale_result_key(id, s), stitched)
            .await?;
        info!(job_id = %id, scale, tiles = num_tiles, "scale stitched");
        self.store
            .append_event(id, &format!("scale {s}: stitched"))
            .await?;
        self.changed(id);
        Ok(Step::ScaleDone)
    }

    /// Queues the tiles of one phase, cut from the progressive canvas of the earlier phases.
    /// Stores `bytes` under `key` when there are any, returning the key the task names.
    async fn put_optional(&self, key: String, bytes: Option<Vec<u8>>) -> Result<Option<String>> {
        match bytes {
            Some(bytes) => {
                self.blobs.put(&key, bytes).await?;
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    async fn queue_phase(
        &self,
        record: &JobRecord,
        spec: &JobSpec,
        job_plan: &JobPlan,
        scale: usize,
        (phase, tiles): (usize, &[usize]),
        earlier: &[usize],
    ) -> Result<()> {
        let id = &record.job.id;
        let s = scale as u32;
        let style_attempt = match self.store.task_state(&TaskId::style(id, s)).await? {
            Some(TaskState::Done { attempt }) => attempt,
            _ => {
                return Err(JobError::Internal(
                    "tiles are queued after the style target",
                ))
            }
        };
        let content = self
            .load_image(&blob::image_key(&spec.content_sha256))
            .await?
            .rgb;
        let init = if scale > 0 {
            Some(
                self.load_image(&blob::scale_result_key(id, s - 1))
                    .await?
                    .rgb,
            )
        } else if let Some(sha) = &spec.init_sha256 {
            Some(self.load_image(&blob::image_key(sha)).await?.rgb)
        } else {
            None
        };
        let mut finished = Vec::with_capacity(earlier.len());
        for &tile in earlier {
            let (key, bytes) = self.tile_result(id, s, tile).await?;
            finished.push((tile, key, bytes));
        }
        let mut params = spec.params.clone().unwrap_or_default();
        let source = work::PhaseSource {
            content,
            init,
            content_init: matches!(params.init(), pb::Init::Content | pb::Init::Unspecified),
            finished,
        };
        let (plan_c, tiles_c, limits) = (job_plan.clone(), tiles.to_vec(), self.limits);
        let inputs = tokio::task::spawn_blocking(move || {
            work::tile_inputs(&plan_c, scale, &tiles_c, &source, &limits)
        })
        .await
        .map_err(|_| JobError::Internal("tile input task panicked"))??;

        if inputs.first().is_some_and(|i| i.init.is_some()) {
            params.init = pb::Init::Image as i32;
        }
        let mut tasks = Vec::with_capacity(inputs.len());
        for input in inputs {
            let tile_id = TileId(input.tile as u32);
            let task_id = TaskId::tile(id, s, tile_id);
            let content_blob = blob::tile_content_key(id, s, tile_id);
            self.blobs.put(&content_blob, input.content).await?;
            let init_blob = self
                .put_optional(blob::tile_init_key(id, s, tile_id), input.init)
                .await?;
            let start_blob = self
                .put_optional(blob::tile_start_key(id, s, tile_id), input.start)
                .await?;
            let (weight_x, weight_y) = input.weights.map(|w| (w.xs, w.ys)).unwrap_or_default();
            let inner = input.inner;
            let kind = task::Kind::Tile(pb::TileTask {
                content_blob,
                init_blob,
                style_target_blob: blob::style_target_key(id, s, style_attempt),
                inner: Some(pb::Rect {
                    x: inner.x,
                    y: inner.y,
                    width: inner.width,
                    height: inner.height,
                }),
                iterations: job_plan.scales[scale].iterations,
                params: Some(params.clone()),
                start_blob,
                weight_x,
                weight_y,
            });
            let payload = pb::Task {
                task_id: task_id.to_string(),
                job_id: id.to_string(),
                scale: s,
                tile_index: Some(tile_id.0),
                kind: Some(kind),
                ..Default::default()
            };
            tasks.push(NewTask {
                id: task_id,
                payload: payload.encode_to_vec(),
            });
        }
        let num_tiles = job_plan.num_tiles(scale);
        self.store.set_progress(id, s, num_tiles as u32).await?;
        self.store.enqueue(id, &tasks).await?;
        info!(job_id = %id, scale, phase, tiles = tasks.len(), "tiles queued");
        self.queued(id);
        Ok(())
    }

    /// Returns the accepted result of a done tile: its blob key and bytes.
    async fn tile_result(&self, id: &JobId, s: u32, tile: usize) -> Result<(String, Vec<u8>)> {
        let task = TaskId::tile(id, s, TileId(tile as u32));
        let Some(TaskState::Done { attempt }) = self.store.task_state(&task).await? else {
            return Err(JobError::Corrupt(format!(
                "tile {task} counted done but is not"
            )));
        };
        let key = blob::tile_result_key(id, s, TileId(tile as u32), attempt);
        let bytes = self
            .blobs
            .get(&key)
            .await?
            .ok_or_else(|| JobError::Corrupt(format!("missing blob {key}")))?;
        Ok((key, bytes))
    }

    async fn finish(&self, record: &JobRecord, spec: &JobSpec, job_plan: &JobPlan) -> Result<()> {
        let id = &record.job.id;
        let last = (job_plan.scales.len() - 1) as u32;
        let last_image = self
            .load_image(&blob::scale_result_key(id, last))
            .await?
            .rgb;
        let content = self
            .load_image(&blob::image_key(&spec.content_sha256))
            .await?;
        let spec_c = spec.clone();
        let output =
            tokio::task::spawn_blocking(move || work::output(&spec_c, &last_image, &content))
                .await
                .map_err(|_| JobError::Internal("output task panicked"))??;
        self.blobs.put(&blob::output_key(id), output).await?;
        if self.store.succeed_job(id).await? {
            info!(job_id = %id, "job finished");
        }
        self.changed(id);
        Ok(())
    }

    fn queued(&self, job: &JobId) {
        self.changed(job);
        self.work.notify_waiters();
    }
}

fn style_payload(spec: &JobSpec, job_plan: &JobPlan, task_id: &TaskId) -> Vec<u8> {
    let params = spec.params.clone().unwrap_or_default();
    let scale = task_id.scale as usize;
    let canvas = work::canvas_start_key(&task_id.job, spec, job_plan, scale).and_then(|key| {
        let tiles = job_plan.tiles[scale].as_ref()?;
        Some(pb::CanvasPlan {
            start_blob: key,
            width: tiles.width(),
            height: tiles.height(),
            tile_core: tiles.tile_size(),
            overlap: tiles.overlap(),
            halo: job_plan.halo,
        })
    });
    pb::Task {
        task_id: task_id.to_string(),
        job_id: task_id.job.to_string(),
        scale: task_id.scale,
        kind: Some(task::Kind::StyleTarget(pb::StyleTargetTask {
            styles: spec.styles.clone(),
            style_size: job_plan.style_sizes[scale],
            style_layers: params.style_layers.clone(),
            pooling: params.pooling,
            canvas,
        })),
        ..Default::default()
    }
    .encode_to_vec()
}
