#!/usr/bin/python3
"""Validate HOT templates offline with Heat's own engine code.

    /usr/bin/python3 deploy/heat/validate.py CLOUD.json TEMPLATE [ENV...]
    /usr/bin/python3 deploy/heat/validate.py CLOUD.json --jobs JOBS.json

JOBS.json is a list of {"template": PATH, "envs": [PATH...]}, validated in
one run (loading Heat's plugins takes seconds).

Debian's python3-heat builds the stack exactly as heat-engine does
(heat.engine.stack.Stack with strict_validate=True) and runs
Stack.validate(validate_res_tmpl_only=True): unknown resource types and
properties, bad get_attr/get_resource/get_param, missing or malformed
parameters and constraint violations all fail. Two things need a cloud and
are stubbed from CLOUD.json instead:

  - custom constraints (glance.image, nova.flavor, nova.keypair,
    neutron.network, ...): a value is valid when CLOUD.json lists it under
    the constraint's name, e.g. {"glance.image": ["debian-12"]};
  - service availability (Keystone's catalog): every service is there.

Prints "OK TEMPLATE (...)" or "INVALID TEMPLATE: error" per template,
exiting 1 when any is invalid.
"""
import json
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cloud_file = argv[1]
    if argv[2] == "--jobs":
        with open(argv[3]) as f:
            jobs = json.load(f)
    else:
        jobs = [{"template": argv[2], "envs": argv[3:]}]
    with open(cloud_file) as f:
        cloud = json.load(f)

    import logging
    logging.disable(logging.WARNING)
    from oslo_config import cfg
    cfg.CONF([], project="heat", default_config_files=[])

    from heat.common import context, exception, template_format
    from heat.common import environment_format
    from heat.engine import constraints, environment, resource, resources
    from heat.engine import stack as stack_mod
    from heat.engine import template as tmpl_mod

    def custom_is_valid(self, value, schema, context):
        known = cloud.get(self.name)
        if known is None:
            raise AssertionError("CLOUD.json lists no values for custom constraint %s" % self.name)
        return value in known

    constraints.CustomConstraint._is_valid = custom_is_valid
    resource.Resource.is_service_available = classmethod(lambda cls, ctx: (True, None))
    resources.initialise()
    ctx = context.RequestContext(project_id="mirrord-test", user_id="mirrord-test", is_admin=True)

    def validate(template_file, env_files):
        with open(template_file) as f:
            t = template_format.parse(f.read())
        env = {}
        for path in env_files:
            with open(path) as f:
                e = environment_format.parse(f.read())
            for section, values in e.items():
                if isinstance(values, dict):
                    env.setdefault(section, {}).update(values)
        tmpl = tmpl_mod.Template(t, env=environment.Environment(env))
        st = stack_mod.Stack(ctx, "mirrord-validate", tmpl, strict_validate=True)
        st.validate(validate_res_tmpl_only=True)
        return "%d resources, %d outputs" % (len(st.resources), len(st.outputs))

    failed = 0
    for job in jobs:
        try:
            print("OK %s (%s)" % (job["template"], validate(job["template"], job.get("envs", []))))
        except exception.HeatException as e:
            print("INVALID %s: %s" % (job["template"], str(e).replace("\n", " ")))
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
