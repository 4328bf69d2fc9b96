# The built-in workloads as a Lambda container image (x86_64; build with --platform linux/amd64).
#   docker build -f docker/lambda.Dockerfile -t cescale-workloads .
# One image serves every built-in: override the command per function with the handler from
# `cescale package` (e.g. ImageConfig.Command = service.workloads.handlers.logreg_trial).
FROM public.ecr.aws/lambda/python:3.11

# The python:3.11 base is Amazon Linux 2 (glibc 2.26): --only-binary makes pip choose the newest
# releases that ship wheels for it instead of trying (and failing) to compile newer ones.
RUN pip install --no-cache-dir --only-binary=:all: \
        "numpy>=2,<3" "scikit-learn>=1.3,<2" "jsonschema>=4,<5" "boto3>=1.34,<2"

COPY service/__init__.py ${LAMBDA_TASK_ROOT}/service/__init__.py
COPY service/workloads ${LAMBDA_TASK_ROOT}/service/workloads

CMD ["service.workloads.handlers.mlp_trial"]
