//! The engine thread: owns the network and the style-target cache, and runs one task at a time.
//!
//! Tensor work never runs on the async executor; the runner sends each task here over a
//! channel and awaits the answer.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use deepstyle_proto::v1 as pb;
use tch::Device;
use tokio::sync::oneshot;
use tracing::info;

use super::cache::StyleCache;
use super::error::{FarmError, Result};
use super::task::{self, Control, TaskObserver, Watchers};
use crate::style_target::StyleTarget;
use crate::vgg::{layer_position, Pooling, Vgg19};

/// The layer loaded at start: the deepest one the default layers use.
pub const DEFAULT_DEEPEST_LAYER: &str = "relu5_1";

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The converted VGG19 weights.
    pub weights: PathBuf,
    /// The device to run on.
    pub device: Device,
    /// CPU threads for tensor work, or `None` for libtorch's choice.
    pub threads: Option<i32>,
    /// Style targets kept in memory.
    pub style_cache_entries: usize,
    /// Receives progress and intermediate images of every task, if set.
    pub observer: Option<Arc<dyn TaskObserver>>,
}

/// The inputs of one task, fetched from the coordinator.
#[derive(Debug)]
pub enum Inputs {
    /// Style images and, for a tiled scale, its start image.
    StyleTarget {
        /// Style images: blob key, encoded bytes and blend weight.
        images: Vec<(String, Vec<u8>, f64)>,
        /// The encoded start image of the task's canvas plan, if it has one.
        canvas: Option<Vec<u8>>,
    },
    /// A tile's content and start crops, and the style target unless the engine caches it.
    Tile {
        /// The content crop, a 16-bit PNG.
        content: Vec<u8>,
        /// The start crop, if any.
        init: Option<Vec<u8>>,
        /// The crop of the scale's start image, for the tile's share of the canvas statistics.
        start: Option<Vec<u8>>,
        /// The serialised style target, `None` when cached.
        style_target: Option<Vec<u8>>,
    },
}

struct Request {
    task: pb::Task,
    inputs: Inputs,
    control: Arc<Control>,
    reply: oneshot::Sender<Result<Vec<u8>>>,
}

/// A handle to the engine thread.
#[derive(Debug)]
pub struct Engine {
    requests: mpsc::Sender<Request>,
    cached: Arc<Mutex<HashSet<String>>>,
    device: Device,
}

impl Engine {
    /// Starts the thread and loads the network on it; returns once it is loaded.
    pub async fn start(settings: EngineSettings) -> Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (ready, loaded) = oneshot::channel();
        let cached = Arc::new(Mutex::new(HashSet::new()));
        let device = settings.device;
        let keys = Arc::clone(&cached);
        std::thread::Builder::new()
            .name("deepstyle-engine".into())
            .spawn(move || {
                if let Some(threads) = settings.threads {
                    tch::set_num_threads(threads);
                }
                let load = Vgg19::load(
                    &settings.weights,
                    settings.device,
                    Pooling::Max,
                    DEFAULT_DEEPEST_LAYER,
                );
                let vgg = match load {
                    Ok(vgg) => {
                        let _ = ready.send(Ok(()));
                        vgg
                    }
                    Err(e) => {
                        let _ = ready.send(Err(FarmError::from(e)));
                        return;
                    }
                };
                let mut state = EngineState {
                    settings: settings.clone(),
                    vgg,
                    pooling: Pooling::Max,
                    cache: StyleCache::new(settings.style_cache_entries, keys),
                };
                for request in incoming {
                    let result = state.run(&request.task, request.inputs, &request.control);
                    let _ = request.reply.send(result);
                }
            })
            .map_err(|_| FarmError::EngineGone)?;
        loaded.await.map_err(|_| FarmError::EngineGone)??;
        Ok(Self {
            requests,
            cached,
            device,
        })
    }

    /// Returns the device the engine runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Returns whether the engine holds the style target stored under `key`.
    pub fn has_style_target(&self, key: &str) -> bool {
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Runs a task on the engine thread and returns its result bytes.
    pub async fn run(
        &self,
        task: pb::Task,
        inputs: Inputs,
        control: Arc<Control>,
    ) -> Result<Vec<u8>> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request {
                task,
                inputs,
                control,
                reply,
            })
            .map_err(|_| FarmError::EngineGone)?;
        answer.await.map_err(|_| FarmError::EngineGone)?
    }
}

struct EngineState {
    settings: EngineSettings,
    vgg: Vgg19,
    pooling: Pooling,
    cache: StyleCache<StyleTarget>,
}

impl EngineState {
    fn run(&mut self, task: &pb::Task, inputs: Inputs, control: &Control) -> Result<Vec<u8>> {
        if let Some(observer) = &self.settings.observer {
            observer.on_task(task);
        }
        match (&task.kind, inputs) {
            (Some(pb::task::Kind::StyleTarget(style)), Inputs::StyleTarget { images, canvas }) => {
                self.ensure(style.pooling(), &style.style_layers)?;
                let target = task::style_target(&self.vgg, style, &images, canvas.as_deref())?;
                Ok(target.to_bytes()?)
            }
            (
                Some(pb::task::Kind::Tile(tile)),
                Inputs::Tile {
                    content,
                    init,
                    start,
                    style_target,
                },
            ) => {
                let params = tile.params.clone().unwrap_or_default();
                let layers: Vec<String> = params
                    .content_layers
                    .iter()
                    .chain(&params.style_layers)
                    .cloned()
                    .collect();
                self.ensure(params.pooling(), &layers)?;
                let key = &tile.style_target_blob;
                if let Some(bytes) = style_target {
                    let target =
                        StyleTarget::from_bytes(&bytes, self.vgg.device()).map_err(|e| {
                            FarmError::BadInput {
                                what: key.clone(),
                                reason: e.to_string(),
                            }
                        })?;
                    self.cache.insert(key.clone(), target);
                }
                let target = self.cache.get(key).ok_or_else(|| FarmError::BadInput {
                    what: key.clone(),
                    reason: "style target neither sent nor cached".into(),
                })?;
                let watchers = Watchers {
                    task,
                    control,
                    observer: self.settings.observer.as_deref(),
                };
                let crops = task::TileCrops {
                    content: &content,
                    init: init.as_deref(),
                    start: start.as_deref(),
                };
                task::tile(&self.vgg, target, tile, crops, watchers)
            }
            _ => Err(FarmError::BadInput {
                what: task.task_id.clone(),
                reason: "task kind and inputs disagree".into(),
            }),
        }
    }

    /// Reloads the network when a task needs another pooling or a deeper layer.
    fn ensure(&mut self, pooling: pb::Pooling, layers: &[String]) -> Result<()> {
        let pooling = task::pooling(pooling);
        let mut deepest = self.vgg.deepest().to_owned();
        let mut deeper = false;
        for layer in layers {
            if layer_position(layer)? > layer_position(&deepest)? {
                deepest = layer.clone();
                deeper = true;
            }
        }
        if deeper || pooling != self.pooling {
            info!(deepest, ?pooling, "reloading the network");
            self.vgg = Vgg19::load(
                &self.settings.weights,
                self.settings.device,
                pooling,
                &deepest,
            )?;
            self.pooling = pooling;
        }
        Ok(())
    }
}
