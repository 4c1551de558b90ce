package mongohttp
