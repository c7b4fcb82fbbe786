//! Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", 2015).

use tch::Tensor;

use super::{Optimizer, StepStatus};
use crate::error::Result;

/// Adam with bias correction and fixed learning rate.
#[derive(Debug)]
pub struct Adam {
    learning_rate: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    step: i32,
    moments: Option<(Tensor, Tensor)>,
}

impl Adam {
    /// Creates Adam with the given learning rate and the paper's default betas.
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            step: 0,
            moments: None,
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, x: &Tensor, _loss: f64, grad: &Tensor) -> Result<StepStatus> {
        tch::no_grad(|| {
            let (m, v) = match &mut self.moments {
                Some(moments) => moments,
                None => self
                    .moments
                    .insert((grad.f_zeros_like()?, grad.f_zeros_like()?)),
            };
            self.step += 1;
            let _ = m
                .f_mul_scalar_(self.beta1)?
                .f_add_(&grad.f_mul_scalar(1.0 - self.beta1)?)?;
            let _ = v
                .f_mul_scalar_(self.beta2)?
                .f_add_(&grad.f_square()?.f_mul_scalar(1.0 - self.beta2)?)?;
            let m_hat = m.f_div_scalar(1.0 - self.beta1.powi(self.step))?;
            let v_hat = v.f_div_scalar(1.0 - self.beta2.powi(self.step))?;
            let update = m_hat.f_div(&v_hat.f_sqrt()?.f_add_scalar(self.epsilon)?)?;
            let _ = x
                .shallow_clone()
                .f_sub_(&update.f_mul_scalar(self.learning_rate)?)?;
            Ok(StepStatus::Continue)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::minimise;
    use super::*;

    #[test]
    fn adam_reaches_the_quadratic_minimum() {
        let distance = minimise(&mut Adam::new(0.1), 3000);
        assert!(distance < 1e-3, "distance to optimum {distance}");
    }

    #[test]
    fn adam_first_step_moves_by_learning_rate() {
        // With bias correction the first update is lr * sign(grad) (up to epsilon).
        let x = Tensor::from_slice(&[1.0f64, -2.0]);
        let grad = Tensor::from_slice(&[4.0f64, -0.5]);
        Adam::new(0.25).step(&x, 0.0, &grad).unwrap();
        let got = Vec::<f64>::try_from(&x).unwrap();
        assert!(
            (got[0] - 0.75).abs() < 1e-6 && (got[1] + 1.75).abs() < 1e-6,
            "{got:?}"
        );
    }
}
