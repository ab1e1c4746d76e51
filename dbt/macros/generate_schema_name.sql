{#
  A model's `schema` config is the Iceberg namespace it lands in, used as is (`staging`, `marts`), instead of
  dbt's default `<target schema>_<custom schema>`. The namespaces are names.DBT_STAGING_NAMESPACE and
  names.DBT_MARTS_NAMESPACE; a unit test keeps dbt_project.yml in step with them.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
