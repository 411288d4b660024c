"""Pure-numpy trust metrics: loyalty, calibration, bootstrap. No model, no MLflow."""
