//! Limited-memory BFGS (Nocedal, "Updating Quasi-Newton Matrices with Limited
//! Storage", 1980), as torch's `optim.lbfgs` runs it for neural-style.
//!
//! No line search: the first step is scaled by `min(1, 1/|g|_1)` and later
//! steps take the full quasi-Newton direction times the learning rate. Each
//! step costs one loss evaluation, so iteration counts match neural-style's.

use std::collections::VecDeque;

use tch::{Kind, Tensor};

use super::{Optimizer, StepStatus};
use crate::error::Result;

/// A pair of curvature vectors `(s, y)` with `rho = 1 / yᵀs`.
#[derive(Debug)]
struct Curvature {
    s: Tensor,
    y: Tensor,
    rho: f64,
}

/// L-BFGS over one tensor; the history lives on the tensor's device.
#[derive(Debug)]
pub struct Lbfgs {
    history_size: usize,
    learning_rate: f64,
    tolerance_grad: f64,
    tolerance_change: f64,
    history: VecDeque<Curvature>,
    /// Gradient and step of the previous iteration.
    previous: Option<(Tensor, Tensor)>,
    previous_loss: Option<f64>,
}

impl Lbfgs {
    /// Creates L-BFGS keeping `history_size` curvature pairs.
    pub fn new(history_size: usize, learning_rate: f64) -> Self {
        Self {
            history_size: history_size.max(1),
            learning_rate,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history: VecDeque::new(),
            previous: None,
            previous_loss: None,
        }
    }

    /// Computes the quasi-Newton direction `-H g` by the two-loop recursion.
    fn direction(&self, grad: &Tensor) -> Result<Tensor> {
        let mut q = grad.f_neg()?;
        let mut alphas = Vec::with_capacity(self.history.len());
        for pair in self.history.iter().rev() {
            let alpha = dot(&pair.s, &q)? * pair.rho;
            q = q.f_sub(&pair.y.f_mul_scalar(alpha)?)?;
            alphas.push(alpha);
        }
        let gamma = match self.history.back() {
            Some(last) => dot(&last.s, &last.y)? / dot(&last.y, &last.y)?,
            None => 1.0,
        };
        let mut r = q.f_mul_scalar(gamma)?;
        for (pair, alpha) in self.history.iter().zip(alphas.into_iter().rev()) {
            let beta = dot(&pair.y, &r)? * pair.rho;
            r = r.f_add(&pair.s.f_mul_scalar(alpha - beta)?)?;
        }
        Ok(r)
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(a.f_mul(b)?.f_sum(Kind::Double)?.f_double_value(&[])?)
}

impl Optimizer for Lbfgs {
    fn step(&mut self, x: &Tensor, loss: f64, grad: &Tensor) -> Result<StepStatus> {
        tch::no_grad(|| {
            if grad.f_abs()?.f_max()?.f_double_value(&[])? <= self.tolerance_grad {
                return Ok(StepStatus::Converged);
            }
            if let Some(previous_loss) = self.previous_loss {
                if (loss - previous_loss).abs() < self.tolerance_change {
                    return Ok(StepStatus::Converged);
                }
            }
            if let Some((previous_grad, previous_step)) = self.previous.take() {
                let y = grad.f_sub(&previous_grad)?;
                let ys = dot(&y, &previous_step)?;
                if ys > 1e-10 {
                    if self.history.len() == self.history_size {
                        self.history.pop_front();
                    }
                    self.history.push_back(Curvature {
                        s: previous_step,
                        y,
                        rho: 1.0 / ys,
                    });
                }
            }

            let direction = self.direction(grad)?;
            let step_size = if self.previous_loss.is_none() {
                let l1 = grad.f_abs()?.f_sum(Kind::Double)?.f_double_value(&[])?;
                self.learning_rate * (1.0 / l1).min(1.0)
            } else {
                self.learning_rate
            };
            let step = direction.f_mul_scalar(step_size)?;
            let _ = x.shallow_clone().f_add_(&step)?;
            let change = step.f_abs()?.f_max()?.f_double_value(&[])?;

            self.previous = Some((grad.f_detach_copy()?, step));
            self.previous_loss = Some(loss);
            if change <= self.tolerance_change {
                return Ok(StepStatus::Converged);
            }
            Ok(StepStatus::Continue)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::minimise;
    use super::*;

    #[test]
    fn lbfgs_reaches_the_quadratic_minimum() {
        let distance = minimise(&mut Lbfgs::new(10, 1.0), 100);
        assert!(distance < 1e-5, "distance to optimum {distance}");
    }

    #[test]
    fn lbfgs_with_short_history_still_converges() {
        let distance = minimise(&mut Lbfgs::new(2, 1.0), 400);
        assert!(distance < 1e-4, "distance to optimum {distance}");
    }

    #[test]
    fn lbfgs_is_faster_than_gradient_descent_would_be() {
        // Gradient descent with step 1/100 needs ~1000 steps on this condition number.
        let distance = minimise(&mut Lbfgs::new(10, 1.0), 30);
        assert!(distance < 1e-3, "distance to optimum {distance}");
    }
}
