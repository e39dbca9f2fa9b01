"""What the user writes, validated once into frozen dataclasses: ``recipe`` (specs/<name>.yaml),
``target`` (containers/<name>/target.yaml), ``floors`` (floors manifests), and ``yamlfile``
(line-aware YAML and the schema helpers they share). The rest of the code sees typed objects."""
