//! Optimisers that update an image tensor from its loss gradient.
//!
//! Both work on whole tensors on the image's device, so an optimisation never
//! leaves the GPU. The driver evaluates the loss and gradient at the current
//! point, then calls [`Optimizer::step`], which moves the point in place.

mod adam;
mod lbfgs;

pub use adam::Adam;
pub use lbfgs::Lbfgs;

use tch::Tensor;

use crate::error::Result;

/// What an optimiser step concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Keep iterating.
    Continue,
    /// The gradient or the change fell under tolerance; further steps do nothing useful.
    Converged,
}

/// An optimiser over one tensor.
pub trait Optimizer: std::fmt::Debug {
    /// Moves `x` in place given the loss and its gradient at `x`.
    fn step(&mut self, x: &Tensor, loss: f64, grad: &Tensor) -> Result<StepStatus>;
}

#[cfg(test)]
pub(crate) mod testing {
    //! A known function to minimise: an ill-conditioned quadratic.

    use super::*;
    use tch::{Device, Kind};

    /// `f(x) = 0.5 * sum_i a_i (x_i - c_i)^2` with `a_i` from 1 to 100; its minimum is `c`.
    pub(crate) struct Quadratic {
        pub(crate) a: Tensor,
        pub(crate) c: Tensor,
    }

    impl Quadratic {
        pub(crate) fn new(n: i64) -> Self {
            let opts = (Kind::Double, Device::Cpu);
            let a = Tensor::logspace(0.0, 2.0, n, 10.0, opts);
            let c = Tensor::linspace(-3.0, 5.0, n, opts);
            Self { a, c }
        }

        pub(crate) fn eval(&self, x: &Tensor) -> (f64, Tensor) {
            let d = x - &self.c;
            let loss = (&self.a * d.square()).sum(Kind::Double).double_value(&[]) * 0.5;
            (loss, &self.a * d)
        }

        pub(crate) fn distance(&self, x: &Tensor) -> f64 {
            (x - &self.c).abs().max().double_value(&[])
        }
    }

    /// Runs `opt` on the quadratic for `iterations` from zero and returns the distance to the optimum.
    pub(crate) fn minimise(opt: &mut dyn Optimizer, iterations: usize) -> f64 {
        let q = Quadratic::new(10);
        let x = Tensor::zeros([10], (Kind::Double, Device::Cpu));
        for _ in 0..iterations {
            let (loss, grad) = q.eval(&x);
            if opt.step(&x, loss, &grad).unwrap() == StepStatus::Converged {
                break;
            }
        }
        q.distance(&x)
    }
}
