"""Canary rollouts of a new model version (model.yaml targets.<t>.rollout.strategy: canary; docs/canary.md).

    context.build(config, target)   # what tools/templates/overlay/canary/* read (`canary` in the templates)
    crds.validate(obj)              # Rollout / AnalysisTemplate against the vendored Argo Rollouts CRDs
    promql.problems(objects)        # every PromQL query of the AnalysisTemplates parsed by promtool, names checked
    rollback.rollback(...)          # `make rollback`: the pull request that reverts the last bump
    status.add_to_row(row, api, ns) # `make status`: rollout step and analysis runs per cluster
"""
