// The worker as a Container App scaled by KEDA on the queue, its environment and logs, and
// the scheduled jobs that do the singleton duties once for all replicas: `subscribe` (create
// or renew the Graph subscriptions) and `backfill --enqueue` (the resync, whose reconcile
// commands the replicas share through the queue).

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Prefix for resource names.')
param namePrefix string

@description('Container image of tpe-provisioner.')
param image string

@description('Private registry login server pulled with the worker identity; empty for a public image.')
param registryServer string

@description('Resource id of the worker identity (AZURE_CLIENT_ID in env names its client id).')
param workerIdentityId string

@description('Resource id of the scaler identity used only by the KEDA scale rule.')
param scalerIdentityId string

@description('Graph subscription clientState, kept as a Container Apps secret.')
@secure()
param clientState string

@description('Environment variables of the worker ({name, value} or {name, secretRef}).')
param env array

@description('Service Bus namespace name (not the host name) for the scale rule.')
param serviceBusNamespaceName string

@description('Queue the scale rule watches.')
param queueName string

@description('Minimum replicas (0 or 1).')
param minReplicas int

@description('Maximum replicas.')
param maxReplicas int

@description('Deploy the daily `subscribe` job.')
param deployRenewalJob bool

@description('Cron schedule (UTC) of the renewal job.')
param renewalSchedule string

@description('Deploy the scheduled `backfill --enqueue` job (the resync).')
param deployResyncJob bool

@description('Cron schedule (UTC) of the resync job.')
param resyncSchedule string

// The binary's ops port (TPE_HTTP_LISTEN ':8080').
var opsPort = 8080

var identities = {
  '${workerIdentityId}': {}
  '${scalerIdentityId}': {}
}

var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: workerIdentityId
  }
]

var secrets = [
  {
    name: 'client-state'
    value: clientState
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: '${namePrefix}-env'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

resource worker 'Microsoft.App/containerApps@2025-01-01' = {
  name: '${namePrefix}-worker'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: identities
  }
  properties: {
    environmentId: environment.id
    configuration: {
      // No ingress: the worker pulls from the queue; probes reach the container directly.
      activeRevisionsMode: 'Single'
      secrets: secrets
      registries: registries
    }
    template: {
      // Longer than TPE_SHUTDOWN_TIMEOUT (30s) so in-flight messages drain before SIGKILL.
      terminationGracePeriodSeconds: 45
      containers: [
        {
          name: 'tpe-provisioner'
          image: image
          args: [
            'run'
          ]
          env: env
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: opsPort
              }
              initialDelaySeconds: 5
              periodSeconds: 10
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: opsPort
              }
              initialDelaySeconds: 5
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'servicebus-queue'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                namespace: serviceBusNamespaceName
                queueName: queueName
                messageCount: '5'
              }
              identity: scalerIdentityId
            }
          }
        ]
      }
    }
  }
}

resource renewal 'Microsoft.App/jobs@2025-01-01' = if (deployRenewalJob) {
  name: '${namePrefix}-subscribe'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${workerIdentityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    configuration: {
      triggerType: 'Schedule'
      replicaTimeout: 600
      replicaRetryLimit: 2
      scheduleTriggerConfig: {
        cronExpression: renewalSchedule
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'subscribe'
          image: image
          args: [
            'subscribe'
          ]
          env: env
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
        }
      ]
    }
  }
}

// The resync: plans the whole scope and sends one reconcile command per needed change to
// the queue. The revoke brake applies; a braked plan exits 3 and the execution fails, so a
// retry would only fail the same way: one retry covers a transient Graph or ACS failure.
resource resync 'Microsoft.App/jobs@2025-01-01' = if (deployResyncJob) {
  name: '${namePrefix}-resync'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${workerIdentityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    configuration: {
      triggerType: 'Schedule'
      replicaTimeout: 7200
      replicaRetryLimit: 1
      scheduleTriggerConfig: {
        cronExpression: resyncSchedule
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'resync'
          image: image
          args: [
            'backfill'
            '--enqueue'
          ]
          env: env
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
        }
      ]
    }
  }
}

@description('Name of the Container App.')
output appName string = worker.name
