"""Chart contract tests: helm lint, render-matrix policies, schema rejections, cluster checks."""
