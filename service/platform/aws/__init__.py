"""AWS Lambda backend (boto3). Import `AwsPlatform` from `.lambda_backend`."""
