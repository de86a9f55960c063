"""The canary strategy's analysis: the canary pods' metrics, judged against thresholds."""
