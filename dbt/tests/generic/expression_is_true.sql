{#- Fails with every row for which the SQL boolean expression is false (NULL counts as passing). -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
